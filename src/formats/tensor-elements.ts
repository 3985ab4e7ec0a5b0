import { CkptError } from "../errors.js";
import type { FileSource } from "./file-source.js";
import { FLOAT_DTYPES, type FloatDType } from "./finite-kernels.js";
import { DTYPE_SIZE, elementCount, type TensorRecord } from "./model.js";
import { isContiguous, maxIndex, stridedIndices } from "./tensor-hash.js";

/**
 * A float tensor's logical elements as float64, in row-major order and in chunks, so two
 * tensors of any size can be compared element by element in bounded memory. float16 and
 * bfloat16 are widened exactly (bfloat16 is float32's top 16 bits).
 */

/** Elements per chunk: 8 MiB of float64. */
export const ELEMENT_CHUNK = 1 << 20;
/** Same bound as hashing: a non-contiguous view is gathered from one read of its span. */
const MAX_GATHER_SPAN = 256 << 20;

export function isFloatDType(dtype: string): dtype is FloatDType {
  return FLOAT_DTYPES.has(dtype);
}

export async function* readFloatElements(source: FileSource, tensor: TensorRecord, chunk = ELEMENT_CHUNK): AsyncGenerator<Float64Array> {
  const dtype = tensor.dtype;
  if (!isFloatDType(dtype)) throw new Error(`readFloatElements: tensor ${tensor.path} is ${dtype}, not a float dtype`);
  const size = DTYPE_SIZE[dtype];
  const count = elementCount(tensor.shape);
  if (count === 0) return;
  const range = tensor.storage.bytes;
  if (!range) throw new CkptError("STORAGE_MISSING", `tensor ${tensor.path} has no storage bytes`, { path: tensor.path });
  const big = tensor.storage.byteOrder === "big";
  const base = range.offset + tensor.storageOffset * size;
  if (isContiguous(tensor.shape, tensor.stride)) {
    for (let done = 0; done < count; done += chunk) {
      const n = Math.min(chunk, count - done);
      const bytes = await source.read(base + done * size, n * size, `tensor ${tensor.path}`);
      yield decode(bytes, dtype, big, n);
    }
    return;
  }
  const span = (maxIndex(tensor.shape, tensor.stride) + 1) * size;
  if (span > MAX_GATHER_SPAN) {
    throw new CkptError("TENSOR_TOO_SPARSE", `tensor ${tensor.path} views a ${span}-byte span; comparing it would need too much memory`, { path: tensor.path });
  }
  const all = decode(await source.read(base, span, `tensor ${tensor.path}`), dtype, big, span / size);
  let out = new Float64Array(Math.min(chunk, count));
  let filled = 0;
  let remaining = count;
  for (const index of stridedIndices(tensor.shape, tensor.stride)) {
    out[filled++] = all[index]!;
    if (filled === out.length) {
      yield out;
      remaining -= filled;
      filled = 0;
      out = new Float64Array(Math.min(chunk, remaining));
    }
  }
  if (filled > 0) yield out.subarray(0, filled);
}

function decode(bytes: Buffer, dtype: FloatDType, big: boolean, n: number): Float64Array {
  const size = DTYPE_SIZE[dtype];
  // Typed-array views need little-endian elements at an aligned offset: swap or copy once.
  const own = big || bytes.byteOffset % size !== 0 ? Buffer.from(bytes.subarray(0, n * size)) : bytes;
  if (big) {
    if (size === 2) own.swap16();
    else if (size === 4) own.swap32();
    else own.swap64();
  }
  const out = new Float64Array(n);
  switch (dtype) {
    case "float64":
      out.set(new Float64Array(own.buffer, own.byteOffset, n));
      break;
    case "float32":
      out.set(new Float32Array(own.buffer, own.byteOffset, n));
      break;
    case "float16": {
      const halves = new Uint16Array(own.buffer, own.byteOffset, n);
      const table = halfTable();
      for (let i = 0; i < n; i++) out[i] = table[halves[i]!]!;
      break;
    }
    case "bfloat16": {
      const halves = new Uint16Array(own.buffer, own.byteOffset, n);
      const widened = new Uint32Array(n);
      for (let i = 0; i < n; i++) widened[i] = halves[i]! << 16;
      out.set(new Float32Array(widened.buffer));
      break;
    }
  }
  return out;
}

let HALF_TABLE: Float64Array | undefined;

/** Every binary16 bit pattern's value, built on first use (512 KiB). */
function halfTable(): Float64Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float64Array(1 << 16);
    for (let h = 0; h < 1 << 16; h++) HALF_TABLE[h] = halfToNumber(h);
  }
  return HALF_TABLE;
}

/** IEEE 754 binary16 to a number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
