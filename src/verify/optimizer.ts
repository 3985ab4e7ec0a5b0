/**
 * OPTIMIZER_STATE_INCOMPLETE: an optimizer state_dict (torch/optim/optimizer.py `state_dict`)
 * must hold state for every parameter of its param_groups, with the tensors its optimizer
 * keeps, shaped like the parameter. Resuming from a state without them silently restarts the
 * moments (Adam) or momentum (SGD) of those parameters.
 *
 * The optimizer class is not saved; it is recognised from the hyper-parameters every
 * param_group carries (torch's defaults dict), below.
 *
 * A parameter with no state at all is only a warning: torch creates state on a parameter's
 * first step with a gradient, so a frozen (requires_grad=False) or unused parameter of a
 * param_group never gets any, and a state_dict cannot tell that from a lost entry. A state
 * that exists but lacks a tensor, or is shaped unlike its parameter, is always an error.
 */
import { detectLayout, isDict } from "../formats/layout.js";
import type { CheckpointModel, PickleValue, TensorRef } from "../formats/model.js";
import { childrenOf, getPath, pythonStr } from "../formats/tree.js";
import { modelParameters, type ModelParameter } from "./model-parameters.js";
import { problem, type Problem } from "./report.js";

interface OptimizerKind {
  name: string;
  /** Recognises the class from one param_group's keys and values. */
  matches(group: ReadonlyMap<string, PickleValue>): boolean;
  /** State keys every parameter must have; empty when the optimizer keeps no state. */
  required(group: ReadonlyMap<string, PickleValue>): string[];
}

const truthy = (v: PickleValue | undefined): boolean => v === true || (typeof v === "number" && v !== 0) || (typeof v === "bigint" && v !== 0n);

/** torch/optim/{adam,adamw,sgd,rmsprop,adagrad}.py: the state each `step` creates. */
const KINDS: readonly OptimizerKind[] = [
  {
    name: "Adam/AdamW",
    matches: (g) => g.has("betas") && g.has("amsgrad"),
    required: (g) => ["exp_avg", "exp_avg_sq", "step", ...(truthy(g.get("amsgrad")) ? ["max_exp_avg_sq"] : [])],
  },
  {
    name: "RMSprop",
    matches: (g) => g.has("alpha") && g.has("centered"),
    required: (g) => ["square_avg", "step", ...(truthy(g.get("momentum")) ? ["momentum_buffer"] : []), ...(truthy(g.get("centered")) ? ["grad_avg"] : [])],
  },
  {
    name: "SGD",
    matches: (g) => g.has("momentum") && g.has("dampening") && g.has("nesterov"),
    // torch >= 2.0 keeps no state without momentum; 1.13 stores momentum_buffer = None.
    required: (g) => (truthy(g.get("momentum")) ? ["momentum_buffer"] : []),
  },
  {
    name: "Adagrad",
    matches: (g) => g.has("lr_decay") && g.has("initial_accumulator_value"),
    required: () => ["sum", "step"],
  },
];

/** State tensors shaped like their parameter (as opposed to `step` and other scalars). */
const PARAMETER_SHAPED = new Set(["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg", "sum", "exp_inf", "acc_delta", "ax", "prev"]);

/** Problems listed per optimizer before the rest are summed up in one. */
const MAX_LISTED = 20;

/** Checks every optimizer state the layout names (all of Lightning's `optimizer_states`). */
export function optimizerRule(model: CheckpointModel): Problem[] {
  const layout = detectLayout(model);
  if (layout.optimizerPath === undefined) return [];
  const paths = layout.name === "lightning" ? lightningOptimizerPaths(model.root) : [layout.optimizerPath];
  // Map indices to model parameters only when one optimizer covers the whole model.
  const parameters = layout.modelPath !== undefined && paths.length === 1 ? modelParameters(model.root, layout.modelPath) : undefined;
  return paths.flatMap((path) => capped(optimizerProblems(model.root, path, parameters), path));
}

function lightningOptimizerPaths(root: PickleValue): string[] {
  const list = getPath(root, "optimizer_states");
  return Array.isArray(list) ? list.map((_, i) => `optimizer_states.${i}`) : [];
}

function optimizerProblems(root: PickleValue, path: string, parameters: ModelParameter[] | undefined): Problem[] {
  const optimizer = getPath(root, path);
  const state = isDict(optimizer) ? getPath(optimizer, "state") : undefined;
  const groups = isDict(optimizer) ? getPath(optimizer, "param_groups") : undefined;
  if (!isDict(state) || !Array.isArray(groups)) {
    return [incomplete(`${path} is not an optimizer state_dict (needs "state" and "param_groups")`, path, { optimizer: path })];
  }
  const states = new Map((childrenOf(state) ?? []).map(([k, v]) => [k, v]));
  const ids = groups.map((g) => (isDict(g) ? idsOf(getPath(g, "params")) : []));
  const allIds = ids.flat();
  const out: Problem[] = [];
  const mapping = parameterMapping(allIds, groups.length, parameters);
  for (const [g, group] of groups.entries()) {
    if (!isDict(group)) continue;
    const settings = new Map((childrenOf(group) ?? []).map(([k, v]) => [k, v]));
    const kind = KINDS.find((k) => k.matches(settings));
    const required = kind ? kind.required(settings) : [];
    // An optimizer saved before its first step has no state at all, and resuming from it is exact.
    // Once it has stepped, it keeps state for every parameter (unknown optimizers: if any at all).
    const expectsState = states.size > 0 && (kind ? required.length > 0 : true);
    const label = kind?.name ?? "optimizer";
    const groupIds = ids[g] ?? [];
    if (expectsState && groupIds.length > 0 && groupIds.every((id) => !states.has(id))) {
      out.push(incomplete(`${path}: no parameter of param_group ${g} (${groupIds.length} parameters) has ${label} state, though other groups do: frozen, or state lost`, `${path}.state`, { optimizer: path, group: g, params: groupIds.length }, "warning"));
      continue;
    }
    for (const id of groupIds) {
      const entry = states.get(id);
      const param = mapping?.get(id);
      const named = param ? ` (${param.key})` : "";
      if (entry === undefined) {
        if (expectsState) out.push(incomplete(`${path}: parameter ${id}${named} of param_group ${g} has no ${label} state: frozen (requires_grad=False) or unused, or its state was lost`, `${path}.state.${id}`, { optimizer: path, group: g, param: id, missing: "state" }, "warning"));
        continue;
      }
      const values = new Map((childrenOf(entry) ?? []).map(([k, v]) => [k, v]));
      const missing = required.filter((key) => values.get(key) === undefined || values.get(key) === null);
      if (missing.length > 0) {
        out.push(incomplete(`${path}: state of parameter ${id}${named} lacks ${missing.join(", ")} (${label})`, `${path}.state.${id}`, { optimizer: path, group: g, param: id, missing }));
      }
      out.push(...shapeProblems(path, id, values, param));
    }
  }
  return out;
}

/** Parameter ids of a param_group: ints (torch) or names (FSDP's optim_state_dict), as state keys. */
function idsOf(params: PickleValue | undefined): string[] {
  return Array.isArray(params) ? params.map((p) => pythonStr(p)) : [];
}

/**
 * Which model parameter each optimizer id stands for, when that is knowable: names map to
 * themselves; indices map in order (torch numbers parameters across param_groups in order)
 * only when one param_group covers as many parameters as the model has.
 */
function parameterMapping(ids: readonly string[], groupCount: number, parameters: ModelParameter[] | undefined): Map<string, ModelParameter> | undefined {
  if (parameters === undefined) return undefined;
  const byKey = new Map(parameters.map((p) => [p.key, p]));
  if (ids.length > 0 && ids.every((id) => byKey.has(id))) return new Map(ids.map((id) => [id, byKey.get(id)!]));
  if (groupCount !== 1 || ids.length !== parameters.length || !ids.every((id) => /^\d+$/.test(id))) return undefined;
  return new Map(ids.map((id, i) => [id, parameters[i]!]));
}

function shapeProblems(path: string, id: string, values: ReadonlyMap<string, PickleValue>, param: ModelParameter | undefined): Problem[] {
  const shaped = [...values].filter((entry): entry is [string, TensorRef] => PARAMETER_SHAPED.has(entry[0]) && isTensor(entry[1]));
  const out: Problem[] = [];
  const reference = param?.shape ?? shaped[0]?.[1].shape;
  const against = param ? `parameter ${param.key}` : `${shaped[0]?.[0]}`;
  for (const [key, tensor] of shaped) {
    if (reference === undefined || sameShape(tensor.shape, reference)) continue;
    out.push(incomplete(`${path}.state.${id}.${key} has shape ${JSON.stringify(tensor.shape)}, ${against} has ${JSON.stringify(reference)}`, `${path}.state.${id}.${key}`, { optimizer: path, param: id, key, shape: tensor.shape, expected: reference }));
  }
  return out;
}

function capped(problems: Problem[], path: string): Problem[] {
  if (problems.length <= MAX_LISTED) return problems;
  const rest = problems.length - MAX_LISTED;
  return [...problems.slice(0, MAX_LISTED), incomplete(`${path}: ... and ${rest} more optimizer state problems`, path, { optimizer: path, more: rest })];
}

function incomplete(message: string, path: string, details: Record<string, unknown>, severity?: "warning"): Problem {
  return { ...problem("OPTIMIZER_STATE_INCOMPLETE", message, { path }, severity), details };
}

function isTensor(value: PickleValue | undefined): value is TensorRef {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) && value.kind === "tensor";
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
