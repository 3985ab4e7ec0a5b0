import { FileSource } from "../formats/file-source.js";
import type { CheckpointModel, PickleValue, TensorRecord } from "../formats/model.js";
import { readCheckpoint } from "../formats/open.js";
import { isFloatDType, readFloatElements } from "../formats/tensor-elements.js";
import { hashTensor } from "../formats/tensor-hash.js";
import { walkLeaves } from "../formats/tree.js";
import { isEmptyContainer, valueEntry } from "../inspect/entry-json.js";

/**
 * `diff`: what changed between two checkpoints, leaf by leaf under DESIGN.md's dotted
 * paths. Tensors are equal when their element hashes are (hashTensor); float tensors
 * that differ get the largest absolute element difference and the relative L2 change
 * ||b - a|| / ||a||, streamed from both files in bounded memory.
 */

export type DiffChangeKind = "dtype" | "shape" | "values" | "value";

/** A number, or "nan"/"inf" where JSON has no number (as inspect prints NaN scalars). */
export type DiffNumber = number | "nan" | "inf";

export interface DiffChange {
  path: string;
  kind: DiffChangeKind;
  /** dtype name, shape, SHA-256 of the elements, or the scalar's value (inspect's `{value}` form). */
  from: unknown;
  to: unknown;
  /** Float tensors: max |b - a| over the elements finite in both. */
  max_abs_diff?: DiffNumber;
  /** Float tensors: ||b - a|| / ||a|| over the elements finite in both. */
  rel_l2?: DiffNumber;
  /** Float tensors: elements non-finite in one or both files whose bits differ. */
  non_finite_changed?: number;
}

export interface DiffResult {
  a: string;
  b: string;
  identical: boolean;
  added: string[];
  removed: string[];
  changed: DiffChange[];
  /** Globals outside the allowlist either pickle references (`module.name`); nothing was run. */
  unsafe_globals: string[];
}

type Leaves = Map<string, { tensor?: TensorRecord; value?: PickleValue }>;

export async function diffCheckpoints(a: string, b: string): Promise<DiffResult> {
  const [modelA, modelB] = [await readCheckpoint(a, { checkCrc: false }), await readCheckpoint(b, { checkCrc: false })];
  const leavesA = leavesOf(modelA);
  const leavesB = leavesOf(modelB);
  const result: DiffResult = {
    a, b, identical: false,
    added: [...leavesB.keys()].filter((k) => !leavesA.has(k)),
    removed: [...leavesA.keys()].filter((k) => !leavesB.has(k)),
    changed: [],
    unsafe_globals: [...new Set([...modelA.unsafeGlobals, ...modelB.unsafeGlobals].map((u) => `${u.module}.${u.name}`))],
  };
  const sourceA = await FileSource.open(a, modelA.fileSize);
  const sourceB = await FileSource.open(b, modelB.fileSize).catch(async (error: unknown) => {
    await sourceA.close();
    throw error;
  });
  try {
    for (const [path, left] of leavesA) {
      const right = leavesB.get(path);
      if (!right) continue;
      const change = left.tensor && right.tensor
        ? await compareTensors(path, sourceA, left.tensor, sourceB, right.tensor)
        : compareValues(path, left, right);
      if (change) result.changed.push(change);
    }
  } finally {
    await sourceA.close();
    await sourceB.close();
  }
  result.identical = result.added.length === 0 && result.removed.length === 0 && result.changed.length === 0;
  return result;
}

function leavesOf(model: CheckpointModel): Leaves {
  const tensors = new Map(model.tensors.map((t) => [t.path, t]));
  const leaves: Leaves = new Map();
  for (const leaf of walkLeaves(model.root)) {
    if (leaf.kind === "tensor") {
      const record = tensors.get(leaf.path);
      if (record) leaves.set(leaf.path, { tensor: record });
    } else if (!isEmptyContainer(leaf.value)) {
      leaves.set(leaf.path, { value: leaf.value });
    }
  }
  return leaves;
}

async function compareTensors(path: string, sourceA: FileSource, a: TensorRecord, sourceB: FileSource, b: TensorRecord): Promise<DiffChange | undefined> {
  if (a.dtype !== b.dtype) return { path, kind: "dtype", from: a.dtype, to: b.dtype };
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return { path, kind: "shape", from: a.shape, to: b.shape };
  const [hashA, hashB] = [await hashTensor(sourceA, a), await hashTensor(sourceB, b)];
  if (hashA === hashB) return undefined;
  const change: DiffChange = { path, kind: "values", from: hashA, to: hashB };
  if (isFloatDType(a.dtype)) Object.assign(change, await floatDifference(sourceA, a, sourceB, b));
  return change;
}

/** Max |b - a| and ||b - a|| / ||a||, streamed chunk by chunk from both files. */
async function floatDifference(sourceA: FileSource, a: TensorRecord, sourceB: FileSource, b: TensorRecord): Promise<Pick<DiffChange, "max_abs_diff" | "rel_l2" | "non_finite_changed">> {
  let maxAbs = 0;
  let diffSquares = 0;
  let baseSquares = 0;
  let nonFinite = 0;
  const right = readFloatElements(sourceB, b);
  for await (const chunkA of readFloatElements(sourceA, a)) {
    const next = await right.next();
    if (next.done) break; // same shape, so never reached
    const chunkB = next.value;
    for (let i = 0; i < chunkA.length; i++) {
      const x = chunkA[i]!;
      const y = chunkB[i]!;
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (!Object.is(x, y)) nonFinite++;
        continue;
      }
      const d = Math.abs(y - x);
      if (d > maxAbs) maxAbs = d;
      diffSquares += d * d;
      baseSquares += x * x;
    }
  }
  await right.return(undefined);
  const rel = baseSquares === 0 ? (diffSquares === 0 ? 0 : Infinity) : Math.sqrt(diffSquares / baseSquares);
  return { max_abs_diff: jsonNumber(maxAbs), rel_l2: jsonNumber(rel), ...(nonFinite > 0 ? { non_finite_changed: nonFinite } : {}) };
}

function compareValues(path: string, left: { tensor?: TensorRecord; value?: PickleValue }, right: { tensor?: TensorRecord; value?: PickleValue }): DiffChange | undefined {
  const from = describe(left);
  const to = describe(right);
  if (JSON.stringify(from) === JSON.stringify(to) && sameBytes(left.value, right.value)) return undefined;
  return { path, kind: "value", from, to };
}

/** A scalar as inspect prints its value; anything else as inspect's entry. */
function describe(leaf: { tensor?: TensorRecord; value?: PickleValue }): unknown {
  if (leaf.tensor) return { dtype: leaf.tensor.dtype, shape: leaf.tensor.shape };
  const entry = valueEntry(leaf.value ?? null);
  return "value" in entry ? entry.value : entry;
}

/** valueEntry shows bytes by length only; equal lengths still need equal content. */
function sameBytes(a: PickleValue | undefined, b: PickleValue | undefined): boolean {
  const bytesOf = (v: PickleValue | undefined) => (v !== null && typeof v === "object" && !Array.isArray(v) && v.kind === "bytes" ? v.bytes : undefined);
  const x = bytesOf(a);
  const y = bytesOf(b);
  return x === undefined || y === undefined || Buffer.from(x).equals(Buffer.from(y));
}

function jsonNumber(value: number): DiffNumber {
  if (Number.isNaN(value)) return "nan";
  return Number.isFinite(value) ? value : "inf";
}
