import type { PickleObject, PickleValue } from "../model.js";
import { genericReducers, REFERENCE_ONLY } from "../pickle/allowlist.js";
import type { GuardedCall, PickleOptions, Reducer } from "../pickle/machine.js";

/**
 * What a torch.distributed.checkpoint `.metadata` pickle may name. torch writes it with a
 * plain `pickle.dump(metadata)` (torch/distributed/_shard/checkpoint/filesystem.py
 * `FileSystemWriter.finish` in 1.13) and reads it back with a plain `pickle.load`, so any
 * global in it would run on load. Only the dataclasses DCP itself pickles are accepted,
 * each built as inert data (a PickleObject whose BUILD state holds its fields).
 *
 * What torch 1.13 writes (dumped with pickletools): `Metadata`, `TensorStorageMetadata`,
 * `ChunkStorageMetadata`, `BytesStorageMetadata`, `MetadataIndex` from
 * `torch.distributed._shard.checkpoint.metadata`; `_StorageInfo` from `...checkpoint.filesystem`;
 * `TensorProperties` from `torch.distributed._shard.sharded_tensor.metadata`, whose
 * `__getstate__` tuple spells its layout `torch.serialization._get_layout("torch.strided")` and
 * its memory format `builtins.getattr(MEM_FORMAT_ENCODING, "TORCH_CONTIGUOUS_FORMAT")` (how
 * Python 3.11 pickles an Enum member; Python <= 3.10 calls the enum class with the value);
 * `torch.Size` and dtypes such as `torch.float32`. Torch 2.x moved the same dataclasses to
 * `torch.distributed.checkpoint.metadata` (`_MEM_FORMAT_ENCODING`, plus `StorageMeta` since
 * 2.4), which are accepted under those names too.
 */

const DCP_113 = "torch.distributed._shard.checkpoint";
const DCP_2X = "torch.distributed.checkpoint";
const SHARDED_TENSOR_METADATA = "torch.distributed._shard.sharded_tensor.metadata";

/** The dataclasses, by the module each torch version pickles them from. */
const DATA_CLASSES: readonly string[] = [
  ...["Metadata", "TensorStorageMetadata", "ChunkStorageMetadata", "BytesStorageMetadata", "MetadataIndex"].flatMap((name) => [
    `${DCP_113}.metadata.${name}`,
    `${DCP_2X}.metadata.${name}`,
  ]),
  `${DCP_113}.filesystem._StorageInfo`,
  `${DCP_2X}.filesystem._StorageInfo`,
  `${SHARDED_TENSOR_METADATA}.TensorProperties`,
  `${DCP_2X}.metadata.TensorProperties`,
  `${DCP_2X}.metadata.StorageMeta`,
];

/** The memory-format enums and their members (value order as declared). */
const MEMORY_FORMAT_ENUMS: readonly string[] = [`${SHARDED_TENSOR_METADATA}.MEM_FORMAT_ENCODING`, `${DCP_2X}.metadata._MEM_FORMAT_ENCODING`];
const MEMORY_FORMAT_MEMBERS = ["TORCH_CONTIGUOUS_FORMAT", "TORCH_CHANNELS_LAST", "TORCH_PRESERVE_FORMAT"] as const;

/** torch/serialization.py `_get_layout` looks a name up in a table of layouts; it runs nothing else. */
const LAYOUT_NAMES: ReadonlySet<string> = new Set(["torch.strided", "torch.sparse_coo", "torch.sparse_csr", "torch.sparse_csc", "torch.sparse_bsr", "torch.sparse_bsc", "torch._mkldnn", "torch.jagged"]);

function splitName(qualified: string): { module: string; name: string } {
  const dot = qualified.lastIndexOf(".");
  return { module: qualified.slice(0, dot), name: qualified.slice(dot + 1) };
}

const dataClass = (qualified: string): Reducer => {
  const { module, name } = splitName(qualified);
  return (args) => ({ kind: "object", cls: { kind: "global", module, name }, args });
};

const enumMember = (enumName: string, member: string): PickleObject => {
  const { module, name } = splitName(enumName);
  return { kind: "object", cls: { kind: "global", module, name }, args: [member] };
};

/** `MEM_FORMAT_ENCODING(0)`: an enum member by value (Python <= 3.10's pickling of Enum). */
const enumByValue = (enumName: string): Reducer => (args) => {
  const member = typeof args[0] === "number" ? MEMORY_FORMAT_MEMBERS[args[0]] : undefined;
  return enumMember(enumName, member ?? `<value ${String(args[0])}>`);
};

/** `getattr(MEM_FORMAT_ENCODING, "TORCH_CONTIGUOUS_FORMAT")`, and nothing else, is data. */
const getEnumMember: GuardedCall = (args) => {
  const [owner, member] = args;
  if (args.length !== 2 || typeof member !== "string" || !(MEMORY_FORMAT_MEMBERS as readonly string[]).includes(member)) return undefined;
  if (owner === null || typeof owner !== "object" || Array.isArray(owner) || owner.kind !== "global") return undefined;
  const enumName = `${owner.module}.${owner.name}`;
  return MEMORY_FORMAT_ENUMS.includes(enumName) ? enumMember(enumName, member) : undefined;
};

const getLayout: Reducer = (args) => {
  const name = args[0];
  return { kind: "object", cls: { kind: "global", module: "torch", name: "layout" }, args: [typeof name === "string" && LAYOUT_NAMES.has(name) ? name : "<unknown>"] };
};

/** Pickle options for a DCP `.metadata` stream (no persistent ids: it holds no storages). */
export function dcpMetadataPickleOptions(stream: string): PickleOptions {
  const reducers = genericReducers();
  for (const name of DATA_CLASSES) reducers.set(name, dataClass(name));
  for (const name of MEMORY_FORMAT_ENUMS) reducers.set(name, enumByValue(name));
  reducers.set("torch.serialization._get_layout", getLayout);
  const guardedCalls = new Map<string, GuardedCall>([["builtins.getattr", getEnumMember]]);
  return { stream, reducers, referenceOnly: REFERENCE_ONLY, guardedCalls };
}

/** True when a value is an instance of one of the accepted DCP dataclasses named `name`. */
export function isDcpObject(value: PickleValue | undefined, name: string): value is PickleObject {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) && value.kind === "object"
    && value.cls.name === name && DATA_CLASSES.includes(`${value.cls.module}.${value.cls.name}`);
}
