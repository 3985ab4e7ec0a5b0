import { CkptError } from "../errors.js";
import type { FileSource } from "./file-source.js";
import {
  DTYPE_SIZE,
  elementCount,
  emptyIntegrity,
  type CheckpointModel,
  type DType,
  type IntegrityFacts,
  type PickleValue,
  type StorageRecord,
  type TensorRecord,
  type TensorRef,
} from "./model.js";

/**
 * Reader for the safetensors format (huggingface/safetensors, README "Format"):
 *
 *   8 bytes   N, little-endian u64
 *   N bytes   UTF-8 JSON object {name: {dtype, shape, data_offsets: [begin, end]},
 *             "__metadata__": {str: str}}, padded with spaces
 *   rest      the byte buffer; offsets are relative to its first byte
 *
 * Only the header is read. Problems that leave the header readable (a bad entry, a
 * tensor past the end of the file, overlaps, gaps) become integrity defects so the
 * file still yields a model; problems that leave nothing to read are thrown.
 */

const LENGTH_FIELD_BYTES = 8;

/** `MAX_HEADER_SIZE` of the reference Rust reader (safetensors/src/tensor.rs). */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

/** safetensors dtype names (safetensors/src/tensor.rs `Dtype`) to torch names. */
const DTYPE_BY_SAFETENSORS_NAME: Readonly<Record<string, DType>> = {
  F64: "float64", F32: "float32", F16: "float16", BF16: "bfloat16",
  I64: "int64", I32: "int32", I16: "int16", I8: "int8",
  U64: "uint64", U32: "uint32", U16: "uint16", U8: "uint8",
  BOOL: "bool", F8_E4M3: "float8_e4m3fn", F8_E5M2: "float8_e5m2", C64: "complex64",
};

const OPEN_BRACE = 0x7b;

/** True when the first bytes of a file look like a safetensors header (for format sniffing). */
export function looksLikeSafetensors(head: Buffer, fileSize: number): boolean {
  if (head.length <= LENGTH_FIELD_BYTES) return false;
  const headerLength = head.readBigUInt64LE(0);
  return headerLength >= 2n && headerLength <= BigInt(fileSize - LENGTH_FIELD_BYTES) && head[8] === OPEN_BRACE;
}

/** Reads a safetensors file's header into the neutral checkpoint model. */
export async function readSafetensors(source: FileSource): Promise<CheckpointModel> {
  const headerLength = await readHeaderLength(source);
  const headerBytes = await source.read(LENGTH_FIELD_BYTES, headerLength, "safetensors header");
  const header = parseHeader(source, headerBytes);
  const integrity = emptyIntegrity();
  const layout: HeaderLayout = {
    dataStart: LENGTH_FIELD_BYTES + headerLength,
    bufferLength: source.size - LENGTH_FIELD_BYTES - headerLength,
    fileSize: source.size,
  };

  const ranges: TensorRange[] = [];
  const tensors: TensorRecord[] = [];
  const rootEntries: Array<[PickleValue, PickleValue]> = [];
  let metadata: Record<string, string> | undefined;
  const seen = new Set<string>();

  for (const { name, offset } of header.keys) {
    const where = LENGTH_FIELD_BYTES + offset;
    if (seen.has(name)) {
      // JSON.parse keeps the last of duplicate keys; the reference reader's serde map does too.
      defect(integrity, "SAFETENSORS_MALFORMED", `header names ${JSON.stringify(name)} more than once; the last entry is used`, where);
      continue;
    }
    seen.add(name);
    const value = header.values[name];
    if (name === METADATA_KEY) {
      metadata = readMetadata(value, integrity, where);
      continue;
    }
    const entry = readTensorEntry(name, value, integrity, where);
    if (entry.range !== undefined) ranges.push(entry.range);
    if (entry.tensor === undefined || entry.range === undefined) continue;
    const tensor = toTensorRecord(entry.tensor, entry.range, layout, integrity);
    tensors.push(tensor);
    rootEntries.push([name, toTensorRef(tensor)]);
  }

  checkBufferLayout(ranges, layout, integrity);

  const model: CheckpointModel = {
    path: source.path,
    format: "safetensors",
    fileSize: source.size,
    root: { kind: "dict", entries: rootEntries },
    tensors,
    storages: tensors.map((tensor) => tensor.storage),
    members: [],
    unsafeGlobals: [],
    integrity,
    versions: {},
  };
  if (metadata !== undefined) model.metadata = metadata;
  return model;
}

interface HeaderLayout {
  /** Absolute file offset of the byte buffer. */
  dataStart: number;
  /** Bytes of buffer the file actually holds (negative never: the header was read whole). */
  bufferLength: number;
  fileSize: number;
}

interface TensorRange {
  name: string;
  begin: number;
  end: number;
}

interface TensorDescription {
  dtype: DType;
  shape: number[];
}

/** Reads N and checks it against the file and the reference reader's limit before anything is allocated. */
async function readHeaderLength(source: FileSource): Promise<number> {
  const where = { file: source.path, offset: 0 };
  if (source.size < LENGTH_FIELD_BYTES) {
    throw new CkptError("TRUNCATED", `safetensors header length needs 8 bytes but the file has ${source.size}`, where);
  }
  const headerLength = (await source.read(0, LENGTH_FIELD_BYTES, "safetensors header length")).readBigUInt64LE(0);
  const available = source.size - LENGTH_FIELD_BYTES;
  const start = await source.read(LENGTH_FIELD_BYTES, Math.min(available, 64), "safetensors header start");
  if (headerLength > BigInt(available)) {
    // A cut-off safetensors file and a file of another kind both land here; the JSON start tells them apart.
    const code = start.length === 0 || looksLikeJsonObjectStart(start) ? "TRUNCATED" : "NOT_A_CHECKPOINT";
    throw new CkptError(code, `safetensors header claims ${headerLength} bytes but only ${available} follow the length field`, where);
  }
  if (start[0] !== OPEN_BRACE) {
    throw new CkptError("NOT_A_CHECKPOINT", "not a safetensors file: the header does not start with '{'", { ...where, offset: 8 });
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw new CkptError(
      "SAFETENSORS_MALFORMED",
      `safetensors header of ${headerLength} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit of the reference reader`,
      where,
    );
  }
  return Number(headerLength);
}

/** `{` then, after optional whitespace, a key's quote or the closing brace (or nothing yet). */
function looksLikeJsonObjectStart(bytes: Buffer): boolean {
  if (bytes[0] !== OPEN_BRACE) return false;
  const next = bytes.subarray(1).toString("latin1").trimStart()[0];
  return next === undefined || next === '"' || next === "}";
}

interface ParsedHeader {
  /** Top-level keys in header order, with their byte offset inside the header. */
  keys: Array<{ name: string; offset: number }>;
  values: Record<string, unknown>;
}

function parseHeader(source: FileSource, bytes: Buffer): ParsedHeader {
  const malformed = (why: string): CkptError =>
    new CkptError("SAFETENSORS_MALFORMED", `safetensors header ${why}`, { file: source.path, offset: LENGTH_FIELD_BYTES });
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw malformed("is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw malformed(`is not valid JSON (${reason})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw malformed("is not a JSON object");
  return { keys: scanTopLevelKeys(bytes), values: parsed as Record<string, unknown> };
}

/**
 * Lists the top-level keys of a JSON object already validated by JSON.parse, in file
 * order with byte offsets. JSON.parse alone cannot give the order: a JS object lists
 * integer-like keys ("0", "10") first.
 */
function scanTopLevelKeys(bytes: Buffer): Array<{ name: string; offset: number }> {
  const keys: Array<{ name: string; offset: number }> = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (byte === 0x22 /* " */) {
      let end = i + 1;
      // UTF-8 continuation bytes are >= 0x80, so byte-wise scanning cannot mistake them for '"' or '\'.
      while (end < bytes.length && bytes[end] !== 0x22) end += bytes[end] === 0x5c /* \ */ ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push({ name: JSON.parse(bytes.toString("utf8", i, end + 1)) as string, offset: i });
        expectKey = false;
      }
      i = end;
    } else if (byte === OPEN_BRACE || byte === 0x5b /* [ */) {
      depth++;
      expectKey = depth === 1;
    } else if (byte === 0x7d /* } */ || byte === 0x5d /* ] */) {
      depth--;
    } else if (byte === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

function readMetadata(value: unknown, integrity: IntegrityFacts, where: number): Record<string, string> | undefined {
  // The reference reader types it Option<HashMap<String, String>>: null means absent.
  if (value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    defect(integrity, "SAFETENSORS_MALFORMED", `__metadata__ is ${describe(value)}, not an object of strings`, where);
    return undefined;
  }
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item === "string") metadata[key] = item;
    else defect(integrity, "SAFETENSORS_MALFORMED", `__metadata__ ${JSON.stringify(key)} is ${describe(item)}, not a string`, where);
  }
  return metadata;
}

/**
 * Validates one header entry. The range is returned whenever the offsets are sound, even
 * if the dtype or shape is not, so a bad entry does not also show up as a gap.
 */
function readTensorEntry(
  name: string,
  value: unknown,
  integrity: IntegrityFacts,
  where: number,
): { range?: TensorRange; tensor?: TensorDescription } {
  const label = `tensor ${JSON.stringify(name)}`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    defect(integrity, "SAFETENSORS_MALFORMED", `${label}: entry is ${describe(value)}, not an object`, where);
    return {};
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  const result: { range?: TensorRange; tensor?: TensorDescription } = {};
  const [begin, end, ...rest] = Array.isArray(offsets) ? (offsets as unknown[]) : [];
  if (isSize(begin) && isSize(end) && begin <= end && rest.length === 0) {
    result.range = { name, begin, end };
  } else {
    defect(integrity, "SAFETENSORS_MALFORMED", `${label}: data_offsets ${preview(offsets)} is not [begin, end] with 0 <= begin <= end`, where);
  }
  const torchDtype = typeof dtype === "string" && Object.hasOwn(DTYPE_BY_SAFETENSORS_NAME, dtype) ? DTYPE_BY_SAFETENSORS_NAME[dtype] : undefined;
  if (torchDtype === undefined) {
    defect(integrity, "SAFETENSORS_MALFORMED", `${label}: unknown dtype ${preview(dtype)}`, where);
  }
  const shapeOk = Array.isArray(shape) && shape.every(isSize);
  if (!shapeOk) {
    defect(integrity, "SAFETENSORS_MALFORMED", `${label}: shape ${preview(shape)} is not a list of non-negative integers`, where);
  }
  if (torchDtype !== undefined && shapeOk) result.tensor = { dtype: torchDtype, shape: [...(shape as number[])] };
  return result;
}

function toTensorRecord(description: TensorDescription, range: TensorRange, layout: HeaderLayout, integrity: IntegrityFacts): TensorRecord {
  const { dtype, shape } = description;
  const length = range.end - range.begin;
  const offset = layout.dataStart + range.begin;
  const expected = elementCount(shape) * DTYPE_SIZE[dtype];
  if (!Number.isSafeInteger(expected) || expected !== length) {
    defect(
      integrity,
      "TENSOR_SIZE_MISMATCH",
      `tensor ${JSON.stringify(range.name)} (${dtype}, shape [${shape.join(", ")}]) needs ${expected} bytes but data_offsets give ${length}`,
      offset,
    );
  }
  const storage: StorageRecord = { key: range.name, dtype, bytes: { offset, length }, byteOrder: "little" };
  return { path: range.name, dtype, shape, stride: contiguousStride(shape), storageOffset: 0, storage };
}

function toTensorRef({ dtype, shape, stride, storageOffset, storage }: TensorRecord): TensorRef {
  return { kind: "tensor", dtype, shape, stride, storageOffset, storage, requiresGrad: false, isParameter: false };
}

/** Row-major strides as torch computes them (c10 `contiguous_strides`: a 0-sized dim counts as 1). */
function contiguousStride(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = step;
    step *= Math.max(shape[i] ?? 1, 1);
  }
  return stride;
}

/**
 * Checks the ranges against the file and each other. The reference reader
 * (`Metadata::validate`) requires the sorted ranges to tile the buffer exactly: each
 * begins where the previous ended and the last ends at the buffer's end.
 */
function checkBufferLayout(ranges: TensorRange[], layout: HeaderLayout, integrity: IntegrityFacts): void {
  let furthestEnd = 0;
  for (const range of ranges) {
    if (range.end > layout.bufferLength) {
      defect(
        integrity,
        "STORAGE_OUT_OF_BOUNDS",
        `tensor ${JSON.stringify(range.name)} needs bytes ${layout.dataStart + range.begin}..${layout.dataStart + range.end} but the file ends at ${layout.fileSize}`,
        layout.dataStart + range.begin,
      );
    }
    furthestEnd = Math.max(furthestEnd, range.end);
  }
  if (furthestEnd > layout.bufferLength) {
    defect(
      integrity,
      "TRUNCATED",
      `the header describes ${furthestEnd} bytes of tensor data but the file holds ${layout.bufferLength}`,
      layout.fileSize,
    );
  }

  // Empty tensors occupy no bytes: they can neither overlap nor fill a gap.
  const occupied = ranges.filter((range) => range.end > range.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let coveredBy: TensorRange | undefined;
  for (const range of occupied) {
    if (range.begin < covered && coveredBy !== undefined) {
      defect(
        integrity,
        "TENSOR_OVERLAP",
        `tensor ${JSON.stringify(range.name)} (buffer bytes ${range.begin}..${range.end}) overlaps ${JSON.stringify(coveredBy.name)} (${coveredBy.begin}..${coveredBy.end})`,
        layout.dataStart + range.begin,
      );
    } else if (range.begin > covered) {
      defect(integrity, "SAFETENSORS_GAP", `buffer bytes ${covered}..${range.begin} belong to no tensor`, layout.dataStart + covered);
    }
    if (range.end > covered) {
      covered = range.end;
      coveredBy = range;
    }
  }
  if (covered < layout.bufferLength) {
    defect(
      integrity,
      "SAFETENSORS_GAP",
      `buffer bytes ${covered}..${layout.bufferLength} after the last tensor belong to no tensor`,
      layout.dataStart + covered,
    );
  }
}

function defect(integrity: IntegrityFacts, code: string, message: string, offset: number): void {
  integrity.defects.push({ code, message, offset });
}

function isSize(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

/** A short JSON rendering of an untrusted value for one-line messages. */
function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? "missing";
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
