/**
 * `--require KEY` and `--kind training`: parts a checkpoint must hold to be worth resuming
 * from. A key that is present but None counts as missing (`torch.save({"optimizer": None})`
 * is the usual way an optimizer gets lost).
 */
import { CkptError } from "../errors.js";
import { detectLayout } from "../formats/layout.js";
import type { CheckpointModel } from "../formats/model.js";
import { getPath } from "../formats/tree.js";
import { problem, type Problem } from "./report.js";
import type { Rule } from "./verify-file.js";

/** MISSING_KEY for each dotted key path that is absent or None. */
export function requireRule(keys: readonly string[]): Rule {
  return (model: CheckpointModel) => {
    const out: Problem[] = [];
    for (const key of keys) {
      const value = getPath(model.root, key);
      if (value === undefined || value === null) {
        out.push({ ...problem("MISSING_KEY", `${key} is ${value === null ? "None" : "absent"} (required)`, { path: key }), details: { key } });
      }
    }
    return out;
  };
}

/** Validates a `--require` value: a dotted key path without empty segments. */
export function parseRequiredKey(text: string, option = "--require"): string {
  const key = text.trim();
  if (key === "" || key.split(".").some((part) => part === "")) {
    throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected a dotted key path, e.g. optimizer_state_dict or config.lr`);
  }
  return key;
}

export type CheckpointKind = "training";
export const CHECKPOINT_KINDS: readonly CheckpointKind[] = ["training"];

/**
 * `--kind training`: a model, an optimizer state and a step or epoch, wherever the
 * checkpoint's layout keeps them (`model_state_dict`/`model`/`state_dict`, ...).
 */
export const KIND_TRAINING: Rule = (model: CheckpointModel) => {
  const layout = detectLayout(model);
  const out: Problem[] = [];
  if (layout.modelPath === undefined) {
    out.push({ ...problem("MISSING_KEY", `no model state_dict (layout ${layout.name}; looked for model_state_dict, state_dict, model, ...)`), details: { part: "model" } });
  }
  if (layout.optimizerPath === undefined) {
    out.push({ ...problem("MISSING_KEY", `no optimizer state (layout ${layout.name}; looked for optimizer_state_dict, optimizer, optimizer_states, ...): resuming would restart the optimizer from scratch`), details: { part: "optimizer" } });
  }
  if (layout.step === undefined && layout.epoch === undefined) {
    out.push({ ...problem("MISSING_KEY", `no step or epoch (layout ${layout.name}; looked for epoch, global_step, step, iter_num, ...)`), details: { part: "step" } });
  }
  return out;
};

export function parseKind(text: string, option = "--kind"): CheckpointKind {
  if ((CHECKPOINT_KINDS as readonly string[]).includes(text)) return text as CheckpointKind;
  throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected one of ${CHECKPOINT_KINDS.join(", ")}`);
}

export function kindRule(kind: CheckpointKind): Rule {
  switch (kind) {
    case "training": return KIND_TRAINING;
  }
}
