import { CkptError } from "../errors.js";
import type { PickleValue, TensorRecord, TensorRef } from "./model.js";

/**
 * Walks the data tree a reader built and yields its leaves under dotted paths, the
 * key scheme of DESIGN.md: dict keys as Python's str() of the key, list and tuple
 * items by index (`nested.list.4.0`). Iterative, depth-bounded and cycle-safe, because
 * a hostile pickle can nest 100,000 deep or make a list contain itself.
 */

export const MAX_TREE_DEPTH = 1000;
/**
 * Nodes visited at most. Shared references (the memo) let 456 bytes of pickle describe
 * 2^50 paths; torch.load shares them in memory, but listing every path would never end.
 * Real checkpoints, even of 70B-parameter models, have well under a million leaves.
 */
export const MAX_TREE_NODES = 5_000_000;

export type Leaf =
  | { path: string; kind: "tensor"; tensor: TensorRef }
  | { path: string; kind: "value"; value: PickleValue };

type Frame = { path: string; value: PickleValue; depth: number } | { leave: object };

export function* walkLeaves(root: PickleValue): Generator<Leaf> {
  const stack: Frame[] = [{ path: "", value: root, depth: 0 }];
  // Containers on the current path: one set maintained as we enter and leave, so a
  // container that contains itself is cut without copying sets per node.
  const onPath = new Set<object>();
  let visited = 0;
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if ("leave" in frame) {
      onPath.delete(frame.leave);
      continue;
    }
    const { path, value, depth } = frame;
    if (++visited > MAX_TREE_NODES) {
      throw new CkptError("TREE_TOO_LARGE", `data tree expands to more than ${MAX_TREE_NODES} nodes through shared references`, { path: path.slice(0, 200) });
    }
    if (depth > MAX_TREE_DEPTH) {
      throw new CkptError("NESTING_TOO_DEEP", `data nested deeper than ${MAX_TREE_DEPTH} levels at ${path.slice(0, 80)}...`, { path: path.slice(0, 200) });
    }
    const children = childrenOf(value);
    if (children === undefined) {
      if (isTensor(value)) yield { path, kind: "tensor", tensor: value };
      else yield { path, kind: "value", value };
      continue;
    }
    const container = value as object;
    if (onPath.has(container)) continue; // a container that contains itself: its leaves are listed once
    onPath.add(container);
    stack.push({ leave: container });
    // Push in reverse so leaves come out in the container's own order.
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, child] = children[i]!;
      stack.push({ path: path === "" ? key : `${path}.${key}`, value: child, depth: depth + 1 });
    }
  }
}

/** Every tensor of the tree as a TensorRecord carrying its path. */
export function collectTensors(root: PickleValue): TensorRecord[] {
  const out: TensorRecord[] = [];
  for (const leaf of walkLeaves(root)) {
    if (leaf.kind !== "tensor") continue;
    const t = leaf.tensor;
    out.push({
      path: leaf.path, dtype: t.dtype, shape: t.shape, stride: t.stride, storageOffset: t.storageOffset,
      storage: t.storage, requiresGrad: t.requiresGrad, isParameter: t.isParameter,
    });
  }
  return out;
}

/** Top-level keys of a dict root (what `inspect` lists as top_level_keys). */
export function topLevelKeys(root: PickleValue): string[] {
  if (root !== null && typeof root === "object" && !Array.isArray(root) && root.kind === "dict") {
    return root.entries.map(([k]) => pythonStr(k));
  }
  return [];
}

/**
 * Looks a dotted path up in the tree (dict keys by str(), sequence items by index). A
 * state_dict key holds dots itself (`model_state_dict.fc.weight` is key `fc.weight` under
 * `model_state_dict`), so a key may span several segments: the shortest key that leads to
 * the whole path wins, as walkLeaves would have printed it. `""` is the root.
 */
export function getPath(root: PickleValue, dotted: string): PickleValue | undefined {
  return dotted === "" ? root : lookUp(root, dotted.split("."), 0);
}

function lookUp(node: PickleValue, parts: readonly string[], from: number): PickleValue | undefined {
  if (from === parts.length) return node;
  const children = childrenOf(node);
  if (!children) return undefined;
  for (let end = from + 1; end <= parts.length; end++) {
    const key = parts.slice(from, end).join(".");
    const child = children.find(([k]) => k === key);
    if (child === undefined) continue;
    const found = lookUp(child[1], parts, end);
    if (found !== undefined) return found;
  }
  return undefined;
}

function isTensor(value: PickleValue): value is TensorRef {
  return value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "tensor";
}

/** The children of a container as [key, value] pairs, or undefined for a leaf. */
export function childrenOf(value: PickleValue): Array<[string, PickleValue]> | undefined {
  if (Array.isArray(value)) return value.map((v, i) => [String(i), v]);
  if (value === null || typeof value !== "object") return undefined;
  switch (value.kind) {
    case "dict": return value.entries.map(([k, v]) => [pythonStr(k), v]);
    case "tuple": return value.items.map((v, i) => [String(i), v]);
    case "set": return value.items.map((v, i) => [String(i), v]);
    // argparse.Namespace and other data objects: their __dict__ state is what they hold.
    case "object": return value.state !== undefined ? childrenOf(value.state) : undefined;
    default: return undefined;
  }
}

/** Python's str() of a pickled dict key; keys nest no deeper than data may (MAX_TREE_DEPTH). */
export function pythonStr(value: PickleValue, depth = 0): string {
  if (depth > MAX_TREE_DEPTH) throw new CkptError("NESTING_TOO_DEEP", `a dict key nests deeper than ${MAX_TREE_DEPTH} levels`);
  const inner = (v: PickleValue): string => pythonStr(v, depth + 1);
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "string") return String(value);
  if (Array.isArray(value)) return `[${value.map(inner).join(", ")}]`;
  if (value.kind === "tuple") return value.items.length === 1 ? `(${inner(value.items[0]!)},)` : `(${value.items.map(inner).join(", ")})`;
  if (value.kind === "global") return `${value.module}.${value.name}`;
  return `<${value.kind}>`;
}
