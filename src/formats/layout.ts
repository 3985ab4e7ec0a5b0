import type { CheckpointModel, PickleDict, PickleValue, StorageRecord, TensorRef } from "./model.js";
import { elementCount } from "./model.js";
import { childrenOf, getPath, walkLeaves } from "./tree.js";

/**
 * Names the layout of a checkpoint from its data tree alone: which key holds the model,
 * which the optimizer, and the training progress it records. Other parts (verify rules,
 * `inspect`, the catalog's step/epoch ordering) build on these facts.
 */

export type LayoutName = "state_dict" | "training" | "nanogpt" | "lightning" | "hf-trainer" | "safetensors-weights" | "unknown";

export interface Layout {
  name: LayoutName;
  /** Dotted path of the model's state_dict (`""` when the root is the state_dict). */
  modelPath?: string;
  /** Dotted path of the (first) optimizer's state_dict. */
  optimizerPath?: string;
  step?: number;
  epoch?: number;
  loss?: number;
  /** Elements of the distinct tensors under the model part (tied weights count once). */
  parameterCount: number;
  /** Which parts are present, from PART_NAMES' vocabulary, in that order. */
  parts: string[];
}

/** Top-level keys that name each part in the wild, most specific first. */
const PART_KEYS = {
  model: ["model_state_dict", "state_dict", "model", "model_state", "net", "network", "module"],
  optimizer: ["optimizer_state_dict", "optimizer", "optimizer_states", "optim", "opt", "optimizer_state"],
  scheduler: ["scheduler_state_dict", "scheduler", "lr_scheduler", "lr_schedulers", "scheduler_state"],
  scaler: ["scaler", "scaler_state_dict", "grad_scaler", "amp"],
  ema: ["ema", "ema_state_dict", "model_ema", "ema_model"],
  config: ["config", "model_args", "hyper_parameters", "hparams", "args", "cfg"],
  rng_state: ["rng_state", "rng_states", "torch_rng_state", "cuda_rng_state"],
  callbacks: ["callbacks"],
} as const;
const STEP_KEYS = ["global_step", "step", "iter_num", "iteration", "iter", "num_updates", "steps"];
const EPOCH_KEYS = ["epoch", "epochs"];
const LOSS_KEYS = ["loss", "best_val_loss", "val_loss", "best_loss", "train_loss"];

export const PART_NAMES = ["model", "optimizer", "scheduler", "scaler", "ema", "epoch", "step", "loss", "config", "rng_state", "callbacks"] as const;

export function detectLayout(model: Pick<CheckpointModel, "root" | "format">): Layout {
  const root = model.root;
  if (model.format === "safetensors") return finish(root, { name: "safetensors-weights", modelPath: "" });
  if (!isDict(root)) return finish(root, { name: "unknown" });
  const keys = new Set(root.entries.map(([k]) => (typeof k === "string" ? k : "")));
  // PyTorch Lightning (lightning/pytorch/trainer/connectors/checkpoint_connector.py dump_checkpoint).
  if (keys.has("pytorch-lightning_version") || (keys.has("state_dict") && ["optimizer_states", "lr_schedulers", "loops", "callbacks"].some((k) => keys.has(k)))) {
    const optimizers = getPath(root, "optimizer_states");
    const hasOptimizer = Array.isArray(optimizers) && optimizers.length > 0;
    return finish(root, { name: "lightning", modelPath: "state_dict", ...(hasOptimizer ? { optimizerPath: "optimizer_states.0" } : {}) });
  }
  // nanoGPT's train.py: {model, optimizer, model_args, iter_num, best_val_loss, config}.
  if (keys.has("model") && ["iter_num", "best_val_loss", "model_args"].some((k) => keys.has(k))) {
    return finish(root, { name: "nanogpt", modelPath: "model", ...optional("optimizerPath", firstDictKey(root, ["optimizer"])) });
  }
  const modelPath = PART_KEYS.model.find((k) => isTensorDict(getPath(root, k)));
  const optimizerPath = firstDictKey(root, PART_KEYS.optimizer);
  if (modelPath !== undefined || optimizerPath !== undefined) {
    return finish(root, { name: "training", ...optional("modelPath", modelPath), ...optional("optimizerPath", optimizerPath) });
  }
  if (isTensorDict(root, true)) return finish(root, { name: "state_dict", modelPath: "" });
  return finish(root, { name: "unknown" });
}

/** Fills in progress numbers, parts and the parameter count for a recognised layout. */
function finish(root: PickleValue, base: Pick<Layout, "name" | "modelPath" | "optimizerPath">): Layout {
  const layout: Layout = { ...base, parameterCount: 0, parts: [] };
  if (base.modelPath !== undefined) layout.parameterCount = distinctElements(getPath(root, base.modelPath));
  if (!isDict(root) || base.name === "safetensors-weights") {
    layout.parts = base.modelPath !== undefined ? ["model"] : [];
    return layout;
  }
  const step = firstNumber(root, STEP_KEYS);
  const epoch = firstNumber(root, EPOCH_KEYS);
  const loss = firstNumber(root, LOSS_KEYS);
  if (step !== undefined) layout.step = step;
  if (epoch !== undefined) layout.epoch = epoch;
  if (loss !== undefined) layout.loss = loss;
  const present = new Set<string>();
  if (base.modelPath !== undefined) present.add("model");
  if (base.optimizerPath !== undefined) present.add("optimizer");
  for (const [part, names] of Object.entries(PART_KEYS)) {
    if (part === "model" || part === "optimizer") continue;
    if (names.some((k) => isPresent(getPath(root, k)))) present.add(part);
  }
  if (step !== undefined) present.add("step");
  if (epoch !== undefined) present.add("epoch");
  if (loss !== undefined) present.add("loss");
  layout.parts = PART_NAMES.filter((p) => present.has(p));
  return layout;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

export function isDict(value: PickleValue | undefined): value is PickleDict {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) && value.kind === "dict";
}

function isTensorValue(value: PickleValue): value is TensorRef {
  return value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "tensor";
}

/** A state_dict: tensors under string keys (`strict`: all of them; else at least half, for `_extra_state` and friends). */
function isTensorDict(value: PickleValue | undefined, strict = false): boolean {
  if (!isDict(value) || value.entries.length === 0) return false;
  const tensors = value.entries.filter(([, v]) => isTensorValue(v)).length;
  return strict ? tensors === value.entries.length : tensors > 0 && tensors * 2 >= value.entries.length;
}

/** Present and not None, not an empty container. */
function isPresent(value: PickleValue | undefined): boolean {
  if (value === undefined || value === null) return false;
  const children = childrenOf(value);
  return children === undefined || children.length > 0;
}

function firstDictKey(root: PickleDict, names: readonly string[]): string | undefined {
  return names.find((k) => k !== "optimizer_states" && isDict(getPath(root, k)));
}

function firstNumber(root: PickleDict, names: readonly string[]): number | undefined {
  for (const key of names) {
    const value = getPath(root, key);
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value === "bigint") return Number(value);
  }
  return undefined;
}

/** Elements of the distinct tensors under `value` (see distinctTensorLeaves). */
export function distinctElements(value: PickleValue | undefined): number {
  return distinctTensorLeaves(value).reduce((sum, leaf) => sum + elementCount(leaf.tensor.shape), 0);
}

/**
 * The tensor leaves under `value` (paths relative to it), each view once: torch saves tied
 * weights (GPT-2's `wte.weight` and `lm_head.weight`) as two keys viewing one storage, and
 * `model.parameters()` yields them once, at the first key.
 */
export function distinctTensorLeaves(value: PickleValue | undefined): Array<{ path: string; tensor: TensorRef }> {
  if (value === undefined) return [];
  const seen = new Map<StorageRecord, Set<string>>();
  const out: Array<{ path: string; tensor: TensorRef }> = [];
  for (const leaf of walkLeaves(value)) {
    if (leaf.kind !== "tensor") continue;
    const t = leaf.tensor;
    const view = `${t.storageOffset}/${t.shape.join(",")}/${t.stride.join(",")}`;
    const views = seen.get(t.storage) ?? new Set<string>();
    if (views.has(view)) continue;
    seen.set(t.storage, views.add(view));
    out.push({ path: leaf.path, tensor: t });
  }
  return out;
}
