/**
 * The `--deep` pass: reads the bytes of every floating-point tensor and counts NaN and ±Inf.
 * Each storage is read once, in file order, in big reads that cover many small storages
 * (with the next read in flight while the current one is counted). A storage viewed by
 * several tensors is cut at every view's start and end, so each tensor is charged with the
 * non-finite values of the element range it spans (exact for contiguous and transposed
 * tensors; a strided slice is charged for the gaps between its elements too).
 */
import { availableParallelism } from "node:os";
import { FileSource } from "./file-source.js";
import { fsError } from "./open.js";
import { countNonFinite, FLOAT_DTYPES, swapToLittle, type FloatDType, type NonFiniteCounts } from "./finite-kernels.js";
import { scanReadsInParallel } from "./finite-scan-parallel.js";
import { DTYPE_SIZE, elementCount, type CheckpointModel, type FiniteFacts, type NonFiniteTensor, type StorageRecord, type TensorRecord } from "./model.js";
import { maxIndex } from "./tensor-hash.js";

export interface FiniteScanOptions {
  /** Called after each read is counted: (bytes counted, bytes to count). */
  onProgress?: (done: number, total: number) => void;
  /** Worker threads; by default 1 below 256 MiB of float data, else one per core (max 4). */
  workers?: number;
}

/** Bytes per read; a multiple of every element size, so a split never cuts an element. */
const READ_SIZE = 16 << 20;
/** Bytes between two storages read rather than skipped (skipping costs a read of its own). */
const MAX_GAP = 1 << 20;
/** Below this much float data, starting worker threads costs more than it saves. */
export const PARALLEL_SCAN_MIN_BYTES = 256 * 1024 * 1024;

function parallelScanWorkers(bytes: number): number {
  return bytes < PARALLEL_SCAN_MIN_BYTES ? 1 : Math.max(1, Math.min(availableParallelism(), 4));
}

/** A run of storage elements no view starts or ends inside. */
export interface Segment extends NonFiniteCounts {
  storage: StorageRecord;
  dtype: FloatDType;
  start: number;
  end: number;
}

/** Part of a segment's bytes: file offset and length. */
export interface Piece {
  segment: Segment;
  offset: number;
  length: number;
}

export interface PlannedRead {
  offset: number;
  length: number;
  pieces: Piece[];
}

/** Counts NaN/±Inf in every float32/float64/float16/bfloat16 tensor of `model`, read from `source`. */
export async function scanFinite(source: FileSource, model: CheckpointModel, options: FiniteScanOptions = {}): Promise<FiniteFacts> {
  const byStorage = floatTensorsByStorage(model.tensors);
  const segments: Segment[] = [];
  const spans = new Map<TensorRecord, { first: number; last: number }>();
  for (const [storage, tensors] of byStorage) segments.push(...segmentStorage(storage, tensors, source.size, spans));
  const reads = planReads(segments);
  const total = reads.reduce((sum, r) => sum + r.pieces.reduce((s, p) => s + p.length, 0), 0);
  const workers = options.workers ?? parallelScanWorkers(total);
  if (workers > 1) {
    let done = 0;
    await scanReadsInParallel(source.path, reads, READ_SIZE, workers, (bytes) => {
      done += bytes;
      options.onProgress?.(done, total);
    });
  } else {
    await runReads(source, reads, total, options.onProgress);
  }
  return attribute(model.tensors, segments, spans, total);
}

function floatTensorsByStorage(tensors: readonly TensorRecord[]): Map<StorageRecord, TensorRecord[]> {
  const byStorage = new Map<StorageRecord, TensorRecord[]>();
  for (const tensor of tensors) {
    if (!FLOAT_DTYPES.has(tensor.dtype) || tensor.storage.dtype !== tensor.dtype) continue;
    if (tensor.storage.bytes === undefined || elementCount(tensor.shape) === 0) continue;
    const list = byStorage.get(tensor.storage) ?? [];
    list.push(tensor);
    byStorage.set(tensor.storage, list);
  }
  return byStorage;
}

/** Cuts a storage at every view's first and past-last element (clipped to what the file holds). */
function segmentStorage(storage: StorageRecord, tensors: readonly TensorRecord[], fileSize: number, spans: Map<TensorRecord, { first: number; last: number }>): Segment[] {
  const size = DTYPE_SIZE[storage.dtype];
  const bytes = storage.bytes!;
  const capacity = Math.max(0, Math.floor(Math.min(bytes.length, fileSize - bytes.offset) / size));
  const cuts = new Set<number>();
  const local: Array<{ first: number; last: number }> = [];
  for (const tensor of tensors) {
    // Out-of-bounds views are the bounds rule's to report; count what exists.
    const first = Math.min(tensor.storageOffset, capacity);
    const last = Math.min(tensor.storageOffset + maxIndex(tensor.shape, tensor.stride) + 1, capacity);
    spans.set(tensor, { first, last });
    local.push({ first, last });
    cuts.add(first).add(last);
  }
  const points = [...cuts].sort((a, b) => a - b);
  const segments: Segment[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    const end = points[i + 1]!;
    if (local.some((s) => s.first <= start && end <= s.last)) {
      segments.push({ storage, dtype: storage.dtype as FloatDType, start, end, nan: 0, posInf: 0, negInf: 0 });
    }
  }
  return segments;
}

/** Pieces of at most READ_SIZE bytes in file order, grouped into reads of at most READ_SIZE bytes. */
function planReads(segments: readonly Segment[]): PlannedRead[] {
  const pieces: Piece[] = [];
  for (const segment of segments) {
    const size = DTYPE_SIZE[segment.dtype];
    const offset = segment.storage.bytes!.offset + segment.start * size;
    const length = (segment.end - segment.start) * size;
    for (let done = 0; done < length; done += READ_SIZE) pieces.push({ segment, offset: offset + done, length: Math.min(READ_SIZE, length - done) });
  }
  pieces.sort((a, b) => a.offset - b.offset);
  const reads: PlannedRead[] = [];
  let current: PlannedRead | undefined;
  for (const piece of pieces) {
    const end = piece.offset + piece.length;
    if (current !== undefined && end - current.offset <= READ_SIZE && piece.offset - (current.offset + current.length) <= MAX_GAP) {
      current.pieces.push(piece);
      current.length = Math.max(current.length, end - current.offset);
    } else {
      current = { offset: piece.offset, length: piece.length, pieces: [piece] };
      reads.push(current);
    }
  }
  return reads;
}

async function runReads(source: FileSource, reads: readonly PlannedRead[], total: number, onProgress?: (done: number, total: number) => void): Promise<void> {
  // Buffers of their own ArrayBuffer start 8-byte aligned, so aligned storages need no copy.
  // Sized to the largest read and never zeroed (allocUnsafeSlow: its own ArrayBuffer, so still
  // aligned): `ls --verify` of 200 small checkpoints must not clear 32 MB for each.
  const size = reads.reduce((max, r) => Math.max(max, r.length), 0);
  const first = Buffer.allocUnsafeSlow(size);
  const buffers = [first, reads.length > 1 ? Buffer.allocUnsafeSlow(size) : first] as const;
  const start = (i: number): Promise<void> | undefined => {
    const read = reads[i];
    return read === undefined ? undefined : source.readInto(buffers[i % 2]!, 0, read.length, read.offset);
  };
  let pending = start(0);
  let done = 0;
  try {
    for (let i = 0; i < reads.length; i++) {
      await pending;
      pending = start(i + 1);
      const read = reads[i]!;
      const buffer = buffers[i % 2]!;
      for (const piece of read.pieces) {
        const bytes = buffer.subarray(piece.offset - read.offset, piece.offset - read.offset + piece.length);
        if (piece.segment.storage.byteOrder === "big") swapToLittle(bytes, DTYPE_SIZE[piece.segment.dtype]);
        countNonFinite(bytes, piece.segment.dtype, piece.segment);
        done += piece.length;
      }
      onProgress?.(done, total);
    }
  } finally {
    await pending?.catch(() => undefined); // never leave a read in flight on a file about to close
  }
}

/** Charges each scanned tensor (in tree order) with the segments inside its span. */
function attribute(
  tensors: readonly TensorRecord[], segments: readonly Segment[],
  spans: ReadonlyMap<TensorRecord, { first: number; last: number }>, scannedBytes: number,
): FiniteFacts {
  const bad = new Map<StorageRecord, Segment[]>();
  for (const s of segments) {
    if (s.nan + s.posInf + s.negInf > 0) bad.set(s.storage, [...(bad.get(s.storage) ?? []), s]);
  }
  const nonFinite: NonFiniteTensor[] = [];
  let scannedTensors = 0;
  for (const tensor of tensors) {
    const span = spans.get(tensor);
    if (span === undefined) continue;
    scannedTensors++;
    const counts = { nan: 0, posInf: 0, negInf: 0 };
    for (const s of bad.get(tensor.storage) ?? []) {
      if (s.start < span.first || s.end > span.last) continue;
      counts.nan += s.nan;
      counts.posInf += s.posInf;
      counts.negInf += s.negInf;
    }
    if (counts.nan + counts.posInf + counts.negInf > 0) {
      nonFinite.push({ path: tensor.path, dtype: tensor.dtype, elements: elementCount(tensor.shape), ...counts });
    }
  }
  return { scannedTensors, scannedBytes, nonFinite };
}

/** Opens the checkpoint `model` was read from and scans it (the deep pass of `verify --deep`). */
export async function scanFiniteFile(model: CheckpointModel, options: FiniteScanOptions = {}): Promise<FiniteFacts> {
  let source: FileSource;
  try {
    source = await FileSource.open(model.path, model.fileSize);
  } catch (error) {
    throw fsError(error, model.path);
  }
  try {
    return await scanFinite(source, model, options);
  } finally {
    await source.close();
  }
}
