import type { HfTrainerDir } from "../formats/hf-trainer.js";
import { expectationRule, type Expectation } from "../verify/expectations.js";
import { problem, type Problem } from "../verify/report.js";
import { kindRule } from "../verify/requirements.js";
import type { Rule } from "../verify/verify-file.js";

/** What a checkpoint must be, beyond whole and safe, to be resumed from. */
export interface QualificationOptions {
  /** `--expect PATH=VALUE` (for an HF Trainer directory: checked on its model weights file). */
  expect?: readonly Expectation[];
  /** `--kind training` (default true): model, optimizer state and a step or epoch. */
  requireComplete?: boolean;
  /** More content rules (`--require`, `--min-size`, ... from verify/checks.ts); for an HF Trainer directory, run on its weights file. */
  rules?: readonly Rule[];
}

/** A rule over an HF Trainer directory as a whole (which files it holds). */
export type DirRule = (dir: HfTrainerDir) => Problem[];

export interface QualificationRules {
  /** Run on every single-file checkpoint. */
  rules: Rule[];
  /** Run on the model weights file of an HF Trainer directory. */
  modelRules: Rule[];
  dirRules: DirRule[];
}

export function qualificationRules(options: QualificationOptions): QualificationRules {
  const expect = [...(options.expect && options.expect.length > 0 ? [expectationRule(options.expect)] : []), ...(options.rules ?? [])];
  if (options.requireComplete === false) return { rules: expect, modelRules: expect, dirRules: [] };
  return { rules: [kindRule("training"), ...expect], modelRules: expect, dirRules: [hfTrainingDirRule] };
}

/**
 * What `Trainer.train(resume_from_checkpoint=...)` loads (transformers/trainer.py
 * `_load_from_checkpoint`, `_load_optimizer_and_scheduler`, `TrainerState.load_from_json`):
 * the weights, the optimizer state and trainer_state.json, which the Trainer writes last.
 */
export const hfTrainingDirRule: DirRule = (dir) => {
  const missing = (["model", "optimizer", "trainer_state"] as const).filter((part) => dir.files[part] === undefined);
  return missing.map((part) => problem("PART_MISSING", `no ${part === "model" ? "model weights (model.safetensors, pytorch_model.bin, ...)" : part === "optimizer" ? "optimizer.pt" : "trainer_state.json"}`));
};
