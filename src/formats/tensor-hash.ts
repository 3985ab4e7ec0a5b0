import { createHash } from "node:crypto";
import { CkptError } from "../errors.js";
import type { FileSource } from "./file-source.js";
import { DTYPE_SIZE, elementCount, type TensorRecord } from "./model.js";

/**
 * SHA-256 of a tensor's logical elements laid out contiguously, little-endian (the
 * DESIGN.md contract): a view hashes its own elements, not its whole storage.
 */

const CHUNK = 8 << 20;
/** Non-contiguous tensors are gathered from one read of their span when it is this small. */
const MAX_GATHER_SPAN = 256 << 20;

export async function hashTensor(source: FileSource, tensor: TensorRecord): Promise<string> {
  const hash = createHash("sha256");
  const size = DTYPE_SIZE[tensor.dtype];
  const count = elementCount(tensor.shape);
  const range = tensor.storage.bytes;
  if (count === 0) return hash.digest("hex");
  if (!range) throw new CkptError("STORAGE_MISSING", `tensor ${tensor.path} has no storage bytes`, { path: tensor.path });
  const swap = tensor.storage.byteOrder === "big" && size > 1;
  const base = range.offset + tensor.storageOffset * size;

  if (isContiguous(tensor.shape, tensor.stride)) {
    for (let done = 0; done < count * size; done += CHUNK) {
      const length = Math.min(CHUNK, count * size - done);
      const bytes = await source.read(base + done, length, `tensor ${tensor.path}`);
      hash.update(swap ? swapBytes(bytes, size) : bytes);
    }
    return hash.digest("hex");
  }
  const span = (maxIndex(tensor.shape, tensor.stride) + 1) * size;
  if (span > MAX_GATHER_SPAN) {
    throw new CkptError("TENSOR_TOO_SPARSE", `tensor ${tensor.path} views a ${span}-byte span; hashing it would need too much memory`, { path: tensor.path });
  }
  const window = await source.read(base, span, `tensor ${tensor.path}`);
  const out = Buffer.allocUnsafe(Math.min(count * size, CHUNK));
  let filled = 0;
  for (const index of stridedIndices(tensor.shape, tensor.stride)) {
    window.copy(out, filled, index * size, index * size + size);
    filled += size;
    if (filled === out.length) {
      hash.update(swap ? swapBytes(out, size) : out);
      filled = 0;
    }
  }
  if (filled > 0) hash.update(swap ? swapBytes(out.subarray(0, filled), size) : out.subarray(0, filled));
  return hash.digest("hex");
}

export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const dim = shape[i]!;
    if (dim !== 1 && stride[i] !== expected) return false;
    expected *= dim;
  }
  return true;
}

/** Largest storage index (in elements, relative to the storage offset) the view touches. */
export function maxIndex(shape: readonly number[], stride: readonly number[]): number {
  let max = 0;
  for (let i = 0; i < shape.length; i++) max += (shape[i]! - 1) * (stride[i] ?? 0);
  return max;
}

/** Storage indices (in elements, relative to the storage offset) of a view's elements in row-major order. */
export function* stridedIndices(shape: readonly number[], stride: readonly number[]): Generator<number> {
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  let index = 0;
  for (;;) {
    yield index;
    let d = rank - 1;
    while (d >= 0) {
      counter[d]!++;
      index += stride[d]!;
      if (counter[d]! < shape[d]!) break;
      index -= stride[d]! * shape[d]!;
      counter[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

function swapBytes(bytes: Buffer, size: number): Buffer {
  const copy = Buffer.from(bytes);
  if (size === 2) copy.swap16();
  else if (size === 4) copy.swap32();
  else if (size === 8) copy.swap64();
  return copy;
}
