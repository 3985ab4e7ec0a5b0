import { CkptError } from "../errors.js";
import type { PickleValue, TensorRecord, TensorRef } from "./model.js";

/**
 * Walks the data tree a reader built and yields its leaves under dotted paths, the
 * key scheme of DESIGN.md: dict keys as Python's str() of the key, list and tuple
 * items by index (`nested.list.4.0`). Iterative, depth-bounded and cycle-safe, because
 * a hostile pickle can nest 100,000 deep or make a list contain itself.
 */

export const MAX_TREE_DEPTH = 1000;

export type Leaf =
  | { path: string; kind: "tensor"; tensor: TensorRef }
  | { path: string; kind: "value"; value: PickleValue };

export function* walkLeaves(root: PickleValue): Generator<Leaf> {
  const stack: Array<{ path: string; value: PickleValue; depth: number; ancestors: ReadonlySet<object> }> = [
    { path: "", value: root, depth: 0, ancestors: new Set() },
  ];
  while (stack.length > 0) {
    const { path, value, depth, ancestors } = stack.pop()!;
    if (depth > MAX_TREE_DEPTH) {
      throw new CkptError("NESTING_TOO_DEEP", `data nested deeper than ${MAX_TREE_DEPTH} levels at ${path.slice(0, 80)}...`, { path: path.slice(0, 200) });
    }
    const children = childrenOf(value);
    if (children === undefined) {
      if (isTensor(value)) yield { path, kind: "tensor", tensor: value };
      else yield { path, kind: "value", value };
      continue;
    }
    if (ancestors.has(value as object)) continue; // a container that contains itself: its leaves were already listed
    const inner = new Set(ancestors).add(value as object);
    // Push in reverse so leaves come out in the container's own order.
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, child] = children[i]!;
      stack.push({ path: path === "" ? key : `${path}.${key}`, value: child, depth: depth + 1, ancestors: inner });
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

/** Looks a dotted path up in the tree (dict keys by str(), sequence items by index). */
export function getPath(root: PickleValue, dotted: string): PickleValue | undefined {
  let node: PickleValue | undefined = root;
  for (const part of dotted.split(".")) {
    const children: Array<[string, PickleValue]> | undefined = node === undefined ? undefined : childrenOf(node);
    if (!children) return undefined;
    node = children.find(([k]) => k === part)?.[1];
  }
  return node;
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

/** Python's str() of a pickled dict key. */
export function pythonStr(value: PickleValue): string {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "string") return String(value);
  if (Array.isArray(value)) return `[${value.map(pythonStr).join(", ")}]`;
  if (value.kind === "tuple") return value.items.length === 1 ? `(${pythonStr(value.items[0]!)},)` : `(${value.items.map(pythonStr).join(", ")})`;
  if (value.kind === "global") return `${value.module}.${value.name}`;
  return `<${value.kind}>`;
}
