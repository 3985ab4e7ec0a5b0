/**
 * The parameters of a model's state_dict, in the order `model.parameters()` yields them,
 * as far as a state_dict can tell: it does not mark which entries are parameters, so
 * entries named like BatchNorm's buffers are left out, and tied weights (two keys viewing
 * one storage, which `parameters()` yields once) count once.
 */
import { distinctTensorLeaves } from "../formats/layout.js";
import type { PickleValue } from "../formats/model.js";
import { getPath } from "../formats/tree.js";

export interface ModelParameter {
  /** Key relative to the model part (`fc.weight`). */
  key: string;
  shape: number[];
}

/** torch/nn/modules/batchnorm.py registers these as buffers, never parameters. */
const BUFFER_SUFFIXES = ["running_mean", "running_var", "num_batches_tracked"];

export function modelParameters(root: PickleValue, modelPath: string): ModelParameter[] {
  return distinctTensorLeaves(getPath(root, modelPath))
    .filter((leaf) => !BUFFER_SUFFIXES.some((suffix) => leaf.path === suffix || leaf.path.endsWith(`.${suffix}`)))
    .map((leaf) => ({ key: leaf.path, shape: leaf.tensor.shape }));
}
