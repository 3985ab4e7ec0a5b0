/**
 * The neutral checkpoint model every reader produces and every verify rule reads.
 * Readers fill it with facts (what the bytes say, where each tensor lives, which members
 * failed their CRC, which globals the pickle named); rules turn facts into problems.
 */

/** `dcp` and `hf-sharded` are directories of shards read as one checkpoint (formats/sharded/). */
export type CheckpointFormat = "torch-zip" | "torch-legacy" | "safetensors" | "pickle" | "dcp" | "hf-sharded";

/** torch dtype names, as `str(tensor.dtype)` minus the `torch.` prefix. */
export type DType =
  | "float64" | "float32" | "float16" | "bfloat16"
  | "int64" | "int32" | "int16" | "int8" | "uint8"
  | "uint16" | "uint32" | "uint64"
  | "bool" | "complex64" | "complex128" | "complex32"
  | "float8_e4m3fn" | "float8_e5m2"
  | "qint8" | "quint8" | "qint32";

/** A byte range in the file: [offset, offset + length). */
export interface ByteRange {
  offset: number;
  length: number;
}

/** One storage: a flat run of bytes that one or more tensors view. */
export interface StorageRecord {
  /** Key as the format names it (zip: `data/<key>`; legacy: the pickled root key). */
  key: string;
  dtype: DType;
  /** Where the storage's bytes are in the file; `undefined` when the bytes are absent. */
  bytes: ByteRange | undefined;
  /** Element count the format declares for the storage, when it declares one. */
  declaredElements?: number;
  /** Zip member holding the bytes (torch-zip only). */
  member?: string;
  /** Byte order of the stored elements. */
  byteOrder: "little" | "big";
}

/** A tensor: a strided view into a storage. */
export interface TensorRecord {
  /** Dotted key path of the tensor in the checkpoint tree. */
  path: string;
  dtype: DType;
  shape: number[];
  stride: number[];
  /** Offset into the storage, in elements. */
  storageOffset: number;
  storage: StorageRecord;
  requiresGrad?: boolean;
  /** True when rebuilt as torch.nn.Parameter. */
  isParameter?: boolean;
}

/** A global (module.name) the pickle referenced; it stays a symbol and is never imported. */
export interface GlobalRef {
  kind: "global";
  module: string;
  name: string;
}

/** Where in the pickle something was found. */
export interface PickleSite {
  /** Byte offset of the opcode inside the pickle stream. */
  offset: number;
  /** Zip member (torch-zip) or stream label (legacy) that holds the pickle. */
  stream: string;
}

/** A global the pickle would have imported (and perhaps called) that is not on the allowlist. */
export interface UnsafeGlobalUse {
  module: string;
  name: string;
  /** `reference` (only named), `call` (REDUCE/NEWOBJ/INST/OBJ), `build` (BUILD on its instance), `extension` (EXT opcodes). */
  use: "reference" | "call" | "build" | "extension";
  site: PickleSite;
}

/** An object the pickle asked to construct; kept as inert data. */
export interface PickleObject {
  kind: "object";
  cls: GlobalRef;
  args: PickleValue[];
  state?: PickleValue;
}

export interface PickleTuple {
  kind: "tuple";
  items: PickleValue[];
}

export interface PickleSet {
  kind: "set";
  items: PickleValue[];
  frozen: boolean;
}

/** Dict with its keys kept as pickled values (ints, strings, tuples) in insertion order. */
export interface PickleDict {
  kind: "dict";
  entries: Array<[PickleValue, PickleValue]>;
  /** Class name when it is a dict subclass such as collections.OrderedDict. */
  className?: string;
}

export interface PickleBytes {
  kind: "bytes";
  bytes: Uint8Array;
}

/** A storage reached through a persistent id, before a tensor rebuild wraps it. */
export interface StorageRef {
  kind: "storage";
  storage: StorageRecord;
}

/** A tensor rebuilt (as data) from `_rebuild_tensor_v2` and friends. */
export interface TensorRef {
  kind: "tensor";
  dtype: DType;
  shape: number[];
  stride: number[];
  storageOffset: number;
  storage: StorageRecord;
  requiresGrad: boolean;
  isParameter: boolean;
}

/** Python values the pickle reader produces: plain JS for scalars and lists. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleSet
  | PickleBytes
  | GlobalRef
  | PickleObject
  | StorageRef
  | TensorRef
  | { kind: "complex"; real: number; imag: number }
  | { kind: "slice"; start: PickleValue; stop: PickleValue; step: PickleValue }
  | { kind: "device"; type: string; index: number | null };

/** One zip member as read from the central directory and its local header. */
export interface ZipMember {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** Offset of the member's first data byte (after the local header). */
  dataOffset: number;
}

/** What the container-level checks found: facts, not verdicts. */
export interface IntegrityFacts {
  /** Members whose computed CRC-32 differs from the recorded one. */
  crcMismatches: Array<{ member: string; expected: number; actual: number }>;
  /** Members whose inflated size differs from the recorded one. */
  sizeMismatches: Array<{ member: string; expected: number; actual: number; reason: string }>;
  /** Other structural defects found while reading (code + message + where). */
  defects: Array<{ code: string; message: string; member?: string; offset?: number }>;
  /** True when every member's CRC was computed (false for formats without CRCs). */
  crcChecked: boolean;
}

/** Format version records a checkpoint carries. */
export interface VersionFacts {
  /** torch zip `version` record, or the legacy protocol version. */
  formatVersion?: number;
  /** Legacy sys_info, when present. */
  littleEndian?: boolean;
}

export interface CheckpointModel {
  path: string;
  format: CheckpointFormat;
  fileSize: number;
  /** The data tree (for safetensors: a dict of tensor name -> TensorRef). */
  root: PickleValue;
  /** Every tensor with its dotted path, in tree order. */
  tensors: TensorRecord[];
  storages: StorageRecord[];
  members: ZipMember[];
  unsafeGlobals: UnsafeGlobalUse[];
  integrity: IntegrityFacts;
  versions: VersionFacts;
  /** safetensors `__metadata__`, when present. */
  metadata?: Record<string, string>;
  /** NaN/Inf counts of the floating-point tensors; set only when a deep scan read their bytes. */
  finite?: FiniteFacts;
}

/** One tensor holding NaN or ±Inf, as a deep scan counted them. */
export interface NonFiniteTensor {
  path: string;
  dtype: DType;
  elements: number;
  nan: number;
  posInf: number;
  negInf: number;
}

/** What a deep scan found; `nonFinite` lists only the tensors with NaN or Inf, in tree order. */
export interface FiniteFacts {
  scannedTensors: number;
  scannedBytes: number;
  nonFinite: NonFiniteTensor[];
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Record<DType, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2,
  int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1,
  uint16: 2, uint32: 4, uint64: 8,
  bool: 1, complex64: 8, complex128: 16, complex32: 4,
  float8_e4m3fn: 1, float8_e5m2: 1,
  qint8: 1, quint8: 1, qint32: 4,
};

/** Creates empty integrity facts; readers fill them in. */
export function emptyIntegrity(): IntegrityFacts {
  return { crcMismatches: [], sizeMismatches: [], defects: [], crcChecked: false };
}

/** Number of elements of a shape (1 for a 0-d tensor). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
