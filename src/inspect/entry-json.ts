import type { PickleValue } from "../formats/model.js";
import { pythonStr } from "../formats/tree.js";

/** JSON for one non-tensor leaf, as DESIGN.md's `{"value": ...}`. */
export type ValueEntry =
  | { value: string | number | boolean | null }
  | { bytes: number }
  | { object: string };

export function valueEntry(value: PickleValue): ValueEntry {
  if (value === null || typeof value === "boolean" || typeof value === "string") return { value };
  if (typeof value === "number") return { value: Number.isFinite(value) ? value : pythonFloatName(value) };
  if (typeof value === "bigint") return { value: Number.isSafeInteger(Number(value)) ? Number(value) : value.toString() };
  if (Array.isArray(value)) return { value: "[]" }; // only reached for empty lists, which have no leaves
  switch (value.kind) {
    case "bytes": return { bytes: value.bytes.length };
    case "global": return { value: `${value.module}.${value.name}` };
    case "device": return { value: value.index === null ? value.type : `${value.type}:${value.index}` };
    case "complex": return { value: `(${value.real}${value.imag < 0 ? "-" : "+"}${Math.abs(value.imag)}j)` };
    case "slice": return { value: `slice(${pythonStr(value.start)}, ${pythonStr(value.stop)}, ${pythonStr(value.step)})` };
    case "object": return { object: `${value.cls.module}.${value.cls.name}` };
    case "storage": return { object: `storage ${value.storage.key}` };
    default: return { value: pythonStr(value) };
  }
}

function pythonFloatName(value: number): string {
  if (Number.isNaN(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

/** Containers with no leaves (empty dict/list/tuple) produce no entry, as torch's own flattening. */
export function isEmptyContainer(value: PickleValue): boolean {
  if (Array.isArray(value)) return value.length === 0;
  if (value === null || typeof value !== "object") return false;
  if (value.kind === "dict") return value.entries.length === 0;
  if (value.kind === "tuple" || value.kind === "set") return value.items.length === 0;
  return false;
}
