import type { PickleDict, PickleValue } from "../model.js";
import type { Reducer } from "./machine.js";

/**
 * What a checkpoint pickle may name or construct. Everything here is emulated as data;
 * anything absent is reported as UNSAFE_GLOBAL. The list follows what torch's own
 * `weights_only` unpickler accepts (torch/_weights_only_unpickler.py) plus the few
 * data-only classes real training checkpoints carry (argparse.Namespace, numpy scalars).
 */

const TORCH_DTYPE_NAMES = [
  "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
  "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "complex32",
  "float8_e4m3fn", "float8_e5m2", "qint8", "quint8", "qint32", "quint4x2",
  "double", "float", "half", "long", "int", "short", "cfloat", "cdouble",
];

export const STORAGE_CLASS_DTYPES: Readonly<Record<string, string>> = {
  DoubleStorage: "float64", FloatStorage: "float32", HalfStorage: "float16", BFloat16Storage: "bfloat16",
  LongStorage: "int64", IntStorage: "int32", ShortStorage: "int16", CharStorage: "int8", ByteStorage: "uint8",
  BoolStorage: "bool", ComplexFloatStorage: "complex64", ComplexDoubleStorage: "complex128",
  QInt8Storage: "qint8", QUInt8Storage: "quint8", QInt32Storage: "qint32",
  UntypedStorage: "uint8",
};

/** Globals that are safe to name (they are classes or constants, never called by checkpoints). */
export const REFERENCE_ONLY: ReadonlySet<string> = new Set<string>([
  ...TORCH_DTYPE_NAMES.map((n) => `torch.${n}`),
  ...Object.keys(STORAGE_CLASS_DTYPES).map((n) => `torch.${n}`),
  "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.storage._LegacyStorage",
  "torch.Tensor", "torch.nn.parameter.Parameter", "torch.nn.Parameter",
  "torch.per_tensor_affine", "torch.per_channel_affine", "torch.per_tensor_symmetric",
  "torch.contiguous_format", "torch.channels_last", "torch.preserve_format", "torch.channels_last_3d",
  "torch.layout", "torch.strided", "torch.sparse_coo",
  "numpy.ndarray", "numpy.core.multiarray.ndarray", "numpy._core.multiarray.ndarray",
  // Plain builtin types: naming or calling them builds data (defaultdict(list), str(x)).
  ...["object", "list", "dict", "tuple", "int", "float", "str", "bool"].flatMap((t) => [`builtins.${t}`, `__builtin__.${t}`]),
]);

const dictSubclass = (className: string): Reducer => (args) => {
  const dict: PickleDict = { kind: "dict", entries: [], className };
  const init = args[0];
  if (Array.isArray(init)) {
    for (const item of init) {
      if (item !== null && typeof item === "object" && !Array.isArray(item) && item.kind === "tuple" && item.items.length === 2) {
        dict.entries.push([item.items[0] as PickleValue, item.items[1] as PickleValue]);
      }
    }
  }
  return dict;
};

const asObject = (module: string, name: string): Reducer => (args) => ({ kind: "object", cls: { kind: "global", module, name }, args });

const setOf = (frozen: boolean): Reducer => (args) => ({ kind: "set", items: Array.isArray(args[0]) ? [...args[0]] : [], frozen });

const bytesFromLatin1: Reducer = (args) => {
  const text = args[0];
  if (typeof text === "string") return { kind: "bytes", bytes: Buffer.from(text, "latin1") };
  if (text !== null && typeof text === "object" && !Array.isArray(text) && text.kind === "bytes") return text;
  return { kind: "bytes", bytes: new Uint8Array(0) };
};

/** numpy scalar: numpy.core.multiarray.scalar(dtype, raw_bytes) -> the number, for common kinds. */
const numpyScalar: Reducer = (args) => {
  const dtype = args[0];
  const raw = args[1];
  const code = dtype !== null && typeof dtype === "object" && !Array.isArray(dtype) && dtype.kind === "object" ? dtype.args[0] : undefined;
  if (typeof code === "string" && raw !== null && typeof raw === "object" && !Array.isArray(raw) && raw.kind === "bytes") {
    const b = Buffer.from(raw.bytes);
    const readers: Record<string, () => number | bigint> = {
      f8: () => b.readDoubleLE(0), f4: () => b.readFloatLE(0), i8: () => b.readBigInt64LE(0), i4: () => b.readInt32LE(0),
      u8: () => b.readBigUInt64LE(0), u4: () => b.readUInt32LE(0), b1: () => b.readUInt8(0),
    };
    const read = readers[code];
    const size = Number(code.slice(1));
    if (read && b.length >= size) {
      const v = read();
      return typeof v === "bigint" && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : code === "b1" ? v === 1 : v;
    }
  }
  return { kind: "object", cls: { kind: "global", module: "numpy", name: "scalar" }, args };
};

const numpyAliases = (name: string): string[] => [`numpy.core.multiarray.${name}`, `numpy._core.multiarray.${name}`];

/** Reducers that are the same for every container format. */
export function genericReducers(): Map<string, Reducer> {
  const m = new Map<string, Reducer>();
  m.set("collections.OrderedDict", dictSubclass("collections.OrderedDict"));
  m.set("collections.defaultdict", dictSubclass("collections.defaultdict"));
  m.set("pytorch_lightning.utilities.parsing.AttributeDict", dictSubclass("AttributeDict"));
  m.set("lightning.fabric.utilities.data.AttributeDict", dictSubclass("AttributeDict"));
  for (const mod of ["builtins", "__builtin__"]) {
    m.set(`${mod}.set`, setOf(false));
    m.set(`${mod}.frozenset`, setOf(true));
    m.set(`${mod}.slice`, (a) => ({ kind: "slice", start: a[0] ?? null, stop: a[1] ?? null, step: a[2] ?? null }));
    m.set(`${mod}.complex`, (a) => ({ kind: "complex", real: Number(a[0] ?? 0), imag: Number(a[1] ?? 0) }));
    m.set(`${mod}.bytearray`, bytesFromLatin1);
    m.set(`${mod}.bytes`, bytesFromLatin1);
  }
  m.set("_codecs.encode", bytesFromLatin1);
  // Protocols 0-1 spell it copy_reg (Python 2's name, kept by pickle's fix_imports).
  const reconstructor: Reducer = (args) => {
    const cls = args[0];
    if (cls !== null && typeof cls === "object" && !Array.isArray(cls) && cls.kind === "global") return { kind: "object", cls, args: [] };
    return { kind: "object", cls: { kind: "global", module: "copyreg", name: "_reconstructor" }, args };
  };
  m.set("copyreg._reconstructor", reconstructor);
  m.set("copy_reg._reconstructor", reconstructor);
  m.set("argparse.Namespace", asObject("argparse", "Namespace"));
  m.set("torch.Size", (args) => ({ kind: "tuple", items: Array.isArray(args[0]) ? args[0] : tupleOrEmpty(args[0]) }));
  m.set("torch.device", (args) => ({
    kind: "device",
    type: typeof args[0] === "string" ? args[0].split(":")[0] ?? "" : "",
    index: typeof args[1] === "number" ? args[1] : typeof args[0] === "string" && args[0].includes(":") ? Number(args[0].split(":")[1]) : null,
  }));
  for (const key of numpyAliases("_reconstruct")) m.set(key, asObject("numpy", "ndarray"));
  for (const key of numpyAliases("scalar")) m.set(key, numpyScalar);
  m.set("numpy.dtype", asObject("numpy", "dtype"));
  return m;
}

function tupleOrEmpty(value: PickleValue | undefined): PickleValue[] {
  if (value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) && value.kind === "tuple") return value.items;
  return [];
}
