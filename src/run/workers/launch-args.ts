import { childEnvironment } from "../restart.js";

/**
 * What one launch of a worker gets: `{worker}` and `{units}` replaced in its arguments (the
 * program's path too), and its environment. `{resume}` means nothing here (each unit's
 * completion marker, not a checkpoint, says what is done), so it is left as written.
 */

/** Replaced with the worker's index, 0..N-1. */
export const WORKER_TOKEN = "{worker}";
/** Replaced with the launch's unit names, comma-separated. */
export const UNITS_TOKEN = "{units}";

export function substituteWorker(args: readonly string[], worker: number, units: readonly string[]): string[] {
  const list = units.join(",");
  return args.map((arg) => arg.split(WORKER_TOKEN).join(String(worker)).split(UNITS_TOKEN).join(list));
}

export interface WorkerEnvironment {
  worker: number;
  units: readonly string[];
  dir: string;
  progressFile: string;
  /** The GPU this worker is pinned to (`CUDA_VISIBLE_DEVICES`); undefined leaves the variable as inherited. */
  gpu: string | undefined;
}

/** The supervisor's environment plus CKPTGUARD_DIR/_PROGRESS (as a single run's), CKPTGUARD_WORKER, CKPTGUARD_UNITS and the GPU pin. */
export function workerEnvironment(base: NodeJS.ProcessEnv, vars: WorkerEnvironment): NodeJS.ProcessEnv {
  const env = childEnvironment(base, { resume: undefined, progressFile: vars.progressFile, dir: vars.dir });
  env.CKPTGUARD_WORKER = String(vars.worker);
  env.CKPTGUARD_UNITS = vars.units.join(",");
  if (vars.gpu !== undefined) env.CUDA_VISIBLE_DEVICES = vars.gpu;
  return env;
}

/** Worker i's GPU: the list taken round-robin, so 4 workers on `--gpus 0,1` share two GPUs. */
export function gpuOf(worker: number, gpus: readonly string[]): string | undefined {
  return gpus.length === 0 ? undefined : gpus[worker % gpus.length];
}
