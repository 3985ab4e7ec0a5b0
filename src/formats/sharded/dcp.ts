import { CkptError } from "../../errors.js";
import { FileSource } from "../file-source.js";
import type { DType, PickleDict, PickleObject, PickleValue, UnsafeGlobalUse } from "../model.js";
import { fsError, regularFileSize } from "../open.js";
import { readPickle } from "../pickle/machine.js";
import { dcpMetadataPickleOptions, isDcpObject } from "./dcp-allowlist.js";

/**
 * The torch.distributed.checkpoint directory layout as torch 1.13 writes it
 * (torch/distributed/_shard/checkpoint/filesystem.py `FileSystemWriter`; the same in 2.x
 * under torch/distributed/checkpoint/):
 *
 *   .metadata             pickle of `Metadata`, renamed into place last (`.metadata.tmp` first)
 *   __<rank>_<n>.distcp   one file per write item (or one per rank with single_file_per_rank);
 *                         each item is a complete `torch.save` stream (a zip) at a byte range:
 *                         tensors and tensor shards `torch.save(tensor)`, other values the
 *                         bytes of `torch.save(value)` (default_planner.py `transform_object`)
 *
 * `Metadata.state_dict_metadata` maps each key to `TensorStorageMetadata(properties, size,
 * chunks)` or `BytesStorageMetadata()`; `Metadata.storage_data` maps a `MetadataIndex(fqn,
 * offset)` (offset = the chunk's offsets; None for bytes) to `_StorageInfo(relative_path,
 * offset, length)`. Only plain tensors of rank 0 and ShardedTensor shards are written in 1.13.
 */

export const DCP_METADATA_FILE = ".metadata";
/** `__<rank>_<n>.distcp` (filesystem.py `gen_file`: prefix `__{rank}_`, then a counter). */
export const DCP_SHARD_NAME = /^__\d+_\d+\.distcp$/;

/** Real metadata is KBs to a few MB even for 1000-rank runs; 1 GiB bounds hostile ones. */
const MAX_METADATA_BYTES = 1 << 30;

/** One stored piece of a global tensor: its offsets and sizes in each dimension. */
export interface DcpChunk {
  offsets: number[];
  sizes: number[];
}

export type DcpEntry =
  | { kind: "tensor"; fqn: string; dtype: DType | undefined; size: number[]; chunks: DcpChunk[] }
  | { kind: "bytes"; fqn: string };

/** Where one write item's bytes are: `storage_data[MetadataIndex(fqn, offsets)]`. */
export interface DcpStorageItem {
  fqn: string;
  /** The chunk's offsets (its key among the tensor's chunks); undefined for a bytes entry. */
  chunkOffsets: number[] | undefined;
  relativePath: string;
  offset: number;
  length: number;
}

export interface DcpMetadata {
  path: string;
  fileSize: number;
  entries: DcpEntry[];
  items: DcpStorageItem[];
  unsafeGlobals: UnsafeGlobalUse[];
  /** Fields absent or of the wrong type: facts for a SHARD_INDEX_MALFORMED problem each. */
  defects: string[];
}

/** Reads and parses `.metadata`; throws CkptError (NOT_FOUND, TRUNCATED, PICKLE_MALFORMED, ...) when it cannot. */
export async function readDcpMetadata(path: string): Promise<DcpMetadata> {
  const size = await regularFileSize(path);
  if (size === 0) throw new CkptError("EMPTY_FILE", "DCP .metadata is empty (0 bytes)", { file: path, member: DCP_METADATA_FILE });
  if (size > MAX_METADATA_BYTES) throw new CkptError("MEMBER_TOO_LARGE", `DCP .metadata is ${size} bytes, over ${MAX_METADATA_BYTES}`, { file: path, member: DCP_METADATA_FILE });
  let source: FileSource;
  try {
    source = await FileSource.open(path, size);
  } catch (error) {
    throw fsError(error, path);
  }
  let bytes: Buffer;
  try {
    bytes = await source.read(0, size, "DCP .metadata");
  } finally {
    await source.close();
  }
  const parsed = readPickle(bytes, 0, dcpMetadataPickleOptions(DCP_METADATA_FILE));
  const metadata: DcpMetadata = { path, fileSize: size, entries: [], items: [], unsafeGlobals: parsed.unsafeGlobals, defects: [] };
  if (parsed.end !== bytes.length) metadata.defects.push(`${bytes.length - parsed.end} bytes after the pickle's STOP`);
  interpretMetadata(parsed.value, metadata);
  return metadata;
}

function interpretMetadata(root: PickleValue, out: DcpMetadata): void {
  if (!isDcpObject(root, "Metadata")) {
    out.defects.push(`the pickle holds ${describe(root)}, not a torch.distributed.checkpoint Metadata`);
    return;
  }
  const stateDict = asDict(field(root, "state_dict_metadata"));
  if (!stateDict) out.defects.push("Metadata.state_dict_metadata is not a dict");
  for (const [key, value] of stateDict?.entries ?? []) {
    if (typeof key !== "string") {
      out.defects.push(`state_dict_metadata has a non-string key (${describe(key)})`);
      continue;
    }
    const entry = interpretEntry(key, value, out.defects);
    if (entry) out.entries.push(entry);
  }
  const storage = asDict(field(root, "storage_data"));
  if (!storage) out.defects.push("Metadata.storage_data is not a dict of MetadataIndex -> _StorageInfo");
  for (const [key, value] of storage?.entries ?? []) {
    const item = interpretStorageItem(key, value, out.defects);
    if (item) out.items.push(item);
  }
}

function interpretEntry(fqn: string, value: PickleValue, defects: string[]): DcpEntry | undefined {
  if (isDcpObject(value, "BytesStorageMetadata")) return { kind: "bytes", fqn };
  if (!isDcpObject(value, "TensorStorageMetadata")) {
    defects.push(`${fqn}: storage metadata is ${describe(value)}, not TensorStorageMetadata or BytesStorageMetadata`);
    return undefined;
  }
  const size = intList(field(value, "size"));
  const chunkValues = field(value, "chunks");
  if (!size || !Array.isArray(chunkValues)) {
    defects.push(`${fqn}: TensorStorageMetadata lacks a size or a chunk list`);
    return undefined;
  }
  const chunks: DcpChunk[] = [];
  for (const [i, chunk] of chunkValues.entries()) {
    const offsets = isDcpObject(chunk, "ChunkStorageMetadata") ? intList(field(chunk, "offsets")) : undefined;
    const sizes = isDcpObject(chunk, "ChunkStorageMetadata") ? intList(field(chunk, "sizes")) : undefined;
    if (!offsets || !sizes) defects.push(`${fqn}: chunk ${i} is not a ChunkStorageMetadata with integer offsets and sizes`);
    else chunks.push({ offsets, sizes });
  }
  return { kind: "tensor", fqn, dtype: propertiesDtype(field(value, "properties")), size, chunks };
}

function interpretStorageItem(key: PickleValue, value: PickleValue, defects: string[]): DcpStorageItem | undefined {
  const fqn = isDcpObject(key, "MetadataIndex") ? field(key, "fqn") : undefined;
  if (typeof fqn !== "string") {
    defects.push(`storage_data has a key that is ${describe(key)}, not a MetadataIndex`);
    return undefined;
  }
  const offsetValue = field(key as PickleObject, "offset");
  const chunkOffsets = offsetValue === null || offsetValue === undefined ? undefined : intList(offsetValue);
  if (offsetValue !== null && offsetValue !== undefined && chunkOffsets === undefined) {
    defects.push(`storage_data key ${fqn}: offset is not a list of integers`);
    return undefined;
  }
  const relativePath = isDcpObject(value, "_StorageInfo") ? field(value, "relative_path") : undefined;
  const offset = isDcpObject(value, "_StorageInfo") ? field(value, "offset") : undefined;
  const length = isDcpObject(value, "_StorageInfo") ? field(value, "length") : undefined;
  if (typeof relativePath !== "string" || !isCount(offset) || !isCount(length)) {
    defects.push(`storage_data[${fqn}] is not a _StorageInfo(relative_path, offset, length) with non-negative integers`);
    return undefined;
  }
  return { fqn, chunkOffsets, relativePath, offset, length };
}

/** TensorProperties pickles its fields as a tuple (dtype first) via __getstate__; a dict state is read too. */
function propertiesDtype(properties: PickleValue | undefined): DType | undefined {
  if (!isDcpObject(properties, "TensorProperties")) return undefined;
  const state = properties.state;
  let dtype: PickleValue | undefined;
  if (state !== null && typeof state === "object" && !Array.isArray(state) && state.kind === "tuple") dtype = state.items[0];
  else dtype = field(properties, "dtype");
  if (dtype === null || dtype === undefined || typeof dtype !== "object" || Array.isArray(dtype) || dtype.kind !== "global" || dtype.module !== "torch") return undefined;
  return DTYPE_BY_TORCH_NAME[dtype.name];
}

/** `torch.<name>` as pickled (torch pickles dtypes by their canonical name; aliases for safety). */
const DTYPE_BY_TORCH_NAME: Readonly<Record<string, DType>> = {
  float64: "float64", double: "float64", float32: "float32", float: "float32", float16: "float16", half: "float16",
  bfloat16: "bfloat16", int64: "int64", long: "int64", int32: "int32", int: "int32", int16: "int16", short: "int16",
  int8: "int8", uint8: "uint8", uint16: "uint16", uint32: "uint32", uint64: "uint64", bool: "bool",
  complex64: "complex64", cfloat: "complex64", complex128: "complex128", cdouble: "complex128", complex32: "complex32",
  float8_e4m3fn: "float8_e4m3fn", float8_e5m2: "float8_e5m2", qint8: "qint8", quint8: "quint8", qint32: "qint32",
};

/** A dataclass field: its BUILD state is `{field: value}` (or `(None, {slot: value})` for slotted ones). */
function field(object: PickleObject, name: string): PickleValue | undefined {
  let state = object.state;
  if (state !== null && typeof state === "object" && !Array.isArray(state) && state.kind === "tuple" && state.items.length === 2) {
    const merged: PickleDict = { kind: "dict", entries: [] };
    for (const part of state.items) merged.entries.push(...(asDict(part)?.entries ?? []));
    state = merged;
  }
  return asDict(state ?? null)?.entries.find(([key]) => key === name)?.[1];
}

function asDict(value: PickleValue | undefined): PickleDict | undefined {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) && value.kind === "dict" ? value : undefined;
}

function isCount(value: PickleValue | undefined): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** torch.Size(...) (a tuple once read) or a list of non-negative integers. */
function intList(value: PickleValue | undefined): number[] | undefined {
  const items = Array.isArray(value) ? value : value !== null && value !== undefined && typeof value === "object" && value.kind === "tuple" ? value.items : undefined;
  return items?.every(isCount) ? (items as number[]) : undefined;
}

function describe(value: PickleValue | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "None";
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return "a list";
  if (value.kind === "object") return `a ${value.cls.module}.${value.cls.name}`;
  return `a ${value.kind}`;
}
