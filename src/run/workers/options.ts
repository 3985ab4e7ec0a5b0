import { CkptError } from "../../errors.js";
import type { UnitCheck } from "../../manifest/markers.js";
import { readUnitList } from "../../manifest/unit-list.js";
import { resolveRunOptions, type ResolvedRunOptions, type RunOptions } from "../options.js";

/**
 * `ckptguard run --workers N`: what the multi-worker mode adds to RunOptions. Every value is
 * checked once here, at the library's edge; the flags that only make sense for one
 * resumable process (a checkpoint to resume from, retention, the final check) are refused
 * rather than silently ignored.
 */
export interface WorkerRunOptions extends RunOptions {
  /** Worker processes run at once (>= 1). */
  workers: number;
  /** The units of work, by name (docs/markers.md); or `unitsFile`. */
  units?: readonly string[];
  /** A file with one unit name a line (blank lines and `#` comments skipped). */
  unitsFile?: string;
  /** Units are stages that depend on each other: one at a time, in order; resume stops at the first not-done one. */
  ordered?: boolean;
  /** Units handed to one launch (default 1). */
  batch?: number;
  /** Relaunches of a unit after its first failure (default 3): it fails the run after 1 + maxRetries failed attempts. */
  maxRetries?: number;
  /** Kill a launch whose current unit runs longer than this (since the launch or its last marker). */
  unitTimeoutMs?: number;
  /** `CUDA_VISIBLE_DEVICES` for worker i is `gpus[i % gpus.length]`. */
  gpus?: readonly string[];
  /** How a unit is checked after its launch exits and at resume (default "verify"). */
  unitCheck?: UnitCheck;
}

export interface ResolvedWorkerOptions {
  run: ResolvedRunOptions;
  workers: number;
  units: string[];
  ordered: boolean;
  batch: number;
  maxRetries: number;
  unitTimeoutMs: number | undefined;
  gpus: string[];
  unitCheck: UnitCheck;
}

export const WORKER_DEFAULTS = { batch: 1, maxRetries: 3, unitCheck: "verify" } as const;

/** RunOptions that belong to the single-process mode only. */
const SINGLE_PROCESS_ONLY = ["maxRestarts", "forceResume", "skipValidation", "finalCheck", "keepLast", "keepBest", "maxGapMs", "totalEpochs", "totalSteps"] as const;

export async function resolveWorkerOptions(options: WorkerRunOptions): Promise<ResolvedWorkerOptions> {
  const run = resolveRunOptions(options);
  for (const key of SINGLE_PROCESS_ONLY) {
    if (options[key] !== undefined && options[key] !== false) throw usage(key, options[key], "not set together with workers (it applies to a single resumable command)");
  }
  if (!Number.isSafeInteger(options.workers) || options.workers < 1) throw usage("workers", options.workers, "a whole number >= 1");
  const batch = options.batch ?? WORKER_DEFAULTS.batch;
  if (!Number.isSafeInteger(batch) || batch < 1) throw usage("batch", options.batch, "a whole number >= 1");
  if (options.ordered && batch !== 1) throw usage("batch", batch, "1 with ordered (stages run one at a time)");
  const maxRetries = options.maxRetries ?? WORKER_DEFAULTS.maxRetries;
  if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) throw usage("maxRetries", options.maxRetries, "a whole number >= 0");
  const unitTimeoutMs = options.unitTimeoutMs;
  if (unitTimeoutMs !== undefined && (typeof unitTimeoutMs !== "number" || !Number.isFinite(unitTimeoutMs) || unitTimeoutMs <= 0)) throw usage("unitTimeoutMs", unitTimeoutMs, "a duration > 0");
  const unitCheck = options.unitCheck ?? WORKER_DEFAULTS.unitCheck;
  if (unitCheck !== "size" && unitCheck !== "hash" && unitCheck !== "verify") throw usage("unitCheck", unitCheck, '"size", "hash" or "verify"');
  const gpus = [...(options.gpus ?? [])];
  if (gpus.some((g) => typeof g !== "string" || !/^[A-Za-z0-9-]+$/.test(g))) throw usage("gpus", options.gpus, "GPU indices or UUIDs such as 0,1,2");
  if (options.units !== undefined && (!Array.isArray(options.units) || options.units.some((u) => typeof u !== "string"))) throw usage("units", options.units, "a list of unit names");
  const units = await readUnitList({ ...(options.units !== undefined ? { units: options.units } : {}), ...(options.unitsFile !== undefined ? { unitsFile: options.unitsFile } : {}) });
  return { run, workers: options.workers, units, ordered: options.ordered ?? false, batch, maxRetries, unitTimeoutMs, gpus, unitCheck };
}

function usage(option: string, value: unknown, expected: string): CkptError {
  return new CkptError("USAGE", `run option ${option}: expected ${expected}, got ${JSON.stringify(value)} (${Array.isArray(value) ? "array" : typeof value})`);
}
