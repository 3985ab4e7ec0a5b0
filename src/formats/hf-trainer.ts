import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Layout } from "./layout.js";

/**
 * A Hugging Face Trainer checkpoint directory (`checkpoint-N/`, transformers/trainer.py
 * `_save_checkpoint`): which of its files exist and what `trainer_state.json` says.
 * Facts only; whether the directory is complete enough to resume is a verify decision.
 */

export type HfTrainerPart = "model" | "optimizer" | "scheduler" | "scaler" | "rng_state" | "trainer_state" | "training_args" | "config";

/** File names of each part, in the order transformers tries them (safetensors first since 4.35). */
const PART_FILES: Record<HfTrainerPart, readonly RegExp[]> = {
  model: [/^model\.safetensors$/, /^pytorch_model\.bin$/, /^model\.safetensors\.index\.json$/, /^pytorch_model\.bin\.index\.json$/, /^adapter_model\.(safetensors|bin)$/],
  optimizer: [/^optimizer\.(pt|bin)$/],
  scheduler: [/^scheduler\.pt$/],
  scaler: [/^scaler\.pt$/],
  rng_state: [/^rng_state(_\d+)?\.pth$/],
  trainer_state: [/^trainer_state\.json$/],
  training_args: [/^training_args\.bin$/],
  config: [/^config\.json$/],
};

/** trainer_state.json grows with log_history; real ones are far below this. */
const MAX_TRAINER_STATE_BYTES = 64 << 20;

export interface TrainerState {
  global_step?: number;
  epoch?: number;
  best_metric?: number | null;
  best_model_checkpoint?: string | null;
  log_history: Array<Record<string, unknown>>;
}

export interface HfTrainerDir {
  dir: string;
  /** name `hf-trainer`; step/epoch from trainer_state.json (step from `checkpoint-N` otherwise). */
  layout: Layout;
  /** Full path of the file found for each part present (the first, for sharded rng states). */
  files: Partial<Record<HfTrainerPart, string>>;
  trainerState?: TrainerState;
  /** Why trainer_state.json could not be used, when it exists but is unreadable or not JSON. */
  trainerStateError?: string;
}

/** Describes `dir` as a Trainer checkpoint, or returns undefined when it holds neither a model file nor trainer_state.json. */
export async function detectHfTrainerDir(dir: string): Promise<HfTrainerDir | undefined> {
  const names = (await readdir(dir)).sort();
  const files: Partial<Record<HfTrainerPart, string>> = {};
  for (const [part, patterns] of Object.entries(PART_FILES) as Array<[HfTrainerPart, readonly RegExp[]]>) {
    for (const pattern of patterns) {
      const name = names.find((n) => pattern.test(n));
      if (name !== undefined) {
        files[part] = join(dir, name);
        break;
      }
    }
  }
  if (files.model === undefined && files.trainer_state === undefined) return undefined;
  const result: HfTrainerDir = { dir, layout: { name: "hf-trainer", parameterCount: 0, parts: Object.keys(files) }, files };
  if (files.trainer_state !== undefined) {
    try {
      result.trainerState = await readTrainerState(files.trainer_state);
    } catch (error) {
      result.trainerStateError = (error as Error).message;
    }
  }
  const state = result.trainerState;
  const step = state?.global_step ?? /^checkpoint-(\d+)$/.exec(basename(dir))?.[1];
  if (step !== undefined) result.layout.step = Number(step);
  if (state?.epoch !== undefined) result.layout.epoch = state.epoch;
  const loss = [...(state?.log_history ?? [])].reverse().find((entry) => typeof entry.loss === "number")?.loss;
  if (typeof loss === "number") result.layout.loss = loss;
  return result;
}

async function readTrainerState(path: string): Promise<TrainerState> {
  const { size } = await stat(path);
  if (size > MAX_TRAINER_STATE_BYTES) throw new Error(`trainer_state.json is ${size} bytes (over ${MAX_TRAINER_STATE_BYTES})`);
  const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("trainer_state.json is not a JSON object");
  const raw = parsed as Record<string, unknown>;
  const state: TrainerState = {
    log_history: Array.isArray(raw.log_history) ? raw.log_history.filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null && !Array.isArray(e)) : [],
  };
  if (typeof raw.global_step === "number") state.global_step = raw.global_step;
  if (typeof raw.epoch === "number") state.epoch = raw.epoch;
  if (typeof raw.best_metric === "number" || raw.best_metric === null) state.best_metric = raw.best_metric;
  if (typeof raw.best_model_checkpoint === "string" || raw.best_model_checkpoint === null) state.best_model_checkpoint = raw.best_model_checkpoint;
  return state;
}
