import { CkptError, isCkptError } from "../errors.js";
import type { FileSource } from "./file-source.js";
import { DTYPE_SIZE, emptyIntegrity, type CheckpointModel, type IntegrityFacts, type PickleValue, type StorageRecord } from "./model.js";
import { genericReducers, REFERENCE_ONLY } from "./pickle/allowlist.js";
import { readPickle, type PickleResult } from "./pickle/machine.js";
import { torchPickleOptions } from "./torch-rebuild.js";
import { uniqueStorages } from "./torch.js";
import { collectTensors } from "./tree.js";

/**
 * The legacy torch layout (`_use_new_zipfile_serialization=False`, torch/serialization.py
 * `_legacy_save`): five pickles back to back (magic number, protocol version, sys_info,
 * the object, the sorted storage keys) followed, for each key in that order, by an
 * int64 element count and the storage's raw bytes.
 */

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
/** The pickles come first; they are small, but a hostile header could claim anything. */
const FIRST_WINDOW = 4 << 20;
const MAX_PICKLE_WINDOW = 1 << 30;

export async function readTorchLegacy(source: FileSource): Promise<CheckpointModel> {
  // Pickles cannot be parsed incrementally, so read a window and widen it on TRUNCATED.
  for (let window = Math.min(FIRST_WINDOW, source.size); ; window = Math.min(window * 4, source.size, MAX_PICKLE_WINDOW)) {
    const head = await source.read(0, window, "legacy checkpoint header");
    try {
      return await parseLegacy(source, head);
    } catch (error) {
      const canWiden = window < source.size && window < MAX_PICKLE_WINDOW;
      if (!(isCkptError(error) && error.code === "TRUNCATED" && error.where.file === undefined && canWiden)) throw error;
    }
  }
}

async function parseLegacy(source: FileSource, head: Buffer): Promise<CheckpointModel> {
  const plain = { stream: "pickle", reducers: genericReducers(), referenceOnly: REFERENCE_ONLY };
  const magic = readPickle(head, 0, { ...plain, stream: "legacy magic number" });
  if (magic.value !== LEGACY_MAGIC) return plainPickle(source, head, magic);

  const protocol = readPickle(head, magic.end, { ...plain, stream: "legacy protocol version" });
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) {
    throw new CkptError("FUTURE_VERSION", `legacy torch protocol version ${String(protocol.value)} (this reader knows ${LEGACY_PROTOCOL_VERSION})`, { file: source.path, offset: magic.end });
  }
  const sysInfo = readPickle(head, protocol.end, { ...plain, stream: "legacy sys_info" });
  const littleEndian = dictBool(sysInfo.value, "little_endian") ?? true;
  const byteOrder = littleEndian ? "little" : "big";
  const integrity = emptyIntegrity();
  const main = readPickle(head, sysInfo.end, torchPickleOptions("legacy data pickle", (key, dtype, declaredElements) => {
    const record: StorageRecord = { key, dtype, bytes: undefined, declaredElements, byteOrder };
    return record;
  }));
  const keys = readPickle(head, main.end, { ...plain, stream: "legacy storage keys" });
  const tensors = collectTensors(main.value);
  const storages = uniqueStorages(tensors.map((t) => t.storage));
  await locateStorageBytes(source, keys, storages, integrity);
  return {
    path: source.path,
    format: "torch-legacy",
    fileSize: source.size,
    root: main.value,
    tensors,
    storages,
    members: [],
    unsafeGlobals: [...magic.unsafeGlobals, ...protocol.unsafeGlobals, ...sysInfo.unsafeGlobals, ...main.unsafeGlobals, ...keys.unsafeGlobals],
    integrity,
    versions: { formatVersion: LEGACY_PROTOCOL_VERSION, littleEndian },
  };
}

/** Walks the storage area after the pickles, giving each storage its byte range. */
async function locateStorageBytes(source: FileSource, keys: PickleResult, storages: StorageRecord[], integrity: IntegrityFacts): Promise<void> {
  if (!Array.isArray(keys.value) || !keys.value.every((k): k is string => typeof k === "string")) {
    throw new CkptError("PICKLE_MALFORMED", "legacy storage key list is not a list of strings", { file: source.path, offset: keys.end });
  }
  const byKey = new Map(storages.map((s) => [s.key, s]));
  let position = keys.end;
  for (const key of keys.value) {
    const storage = byKey.get(key);
    if (position + 8 > source.size) {
      integrity.defects.push({ code: "TRUNCATED", message: `file ends before storage ${key} (byte ${position})`, offset: position });
      return;
    }
    const count = (await source.read(position, 8, `storage ${key} header`)).readBigInt64LE(0);
    const elementSize = storage ? DTYPE_SIZE[storage.dtype] : 1;
    const length = Number(count) * elementSize;
    if (count < 0n || !Number.isSafeInteger(length)) {
      integrity.defects.push({ code: "STORAGE_SIZE_MISMATCH", message: `storage ${key} declares ${count} elements`, offset: position });
      return;
    }
    if (!storage) {
      integrity.defects.push({ code: "STORAGE_UNREFERENCED", message: `storage ${key} is listed but no tensor uses it`, offset: position });
    } else {
      storage.bytes = { offset: position + 8, length };
      if (storage.declaredElements !== undefined && storage.declaredElements !== Number(count)) {
        integrity.defects.push({ code: "STORAGE_SIZE_MISMATCH", message: `storage ${key}: pickle says ${storage.declaredElements} elements, data header says ${count}`, offset: position });
      }
    }
    position += 8 + length;
    if (position > source.size) {
      integrity.defects.push({ code: "TRUNCATED", message: `storage ${key} runs ${position - source.size} bytes past the end of the file`, offset: position });
      return;
    }
  }
  if (position < source.size) {
    integrity.defects.push({ code: "TRAILING_DATA", message: `${source.size - position} bytes after the last storage`, offset: position });
  }
}

/** A pickle file that is not a torch checkpoint (e.g. pickle.dump of a dict): scanned as data. */
function plainPickle(source: FileSource, head: Buffer, first: PickleResult): CheckpointModel {
  if (first.end !== head.length || head.length !== source.size) {
    throw new CkptError("NOT_A_CHECKPOINT", "a pickle stream, but not a torch checkpoint (no legacy magic number)", { file: source.path });
  }
  return {
    path: source.path,
    format: "pickle",
    fileSize: source.size,
    root: first.value,
    tensors: collectTensors(first.value),
    storages: [],
    members: [],
    unsafeGlobals: first.unsafeGlobals,
    integrity: emptyIntegrity(),
    versions: {},
  };
}

function dictBool(value: PickleValue, key: string): boolean | undefined {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && value.kind === "dict") {
    const found = value.entries.find(([k]) => k === key)?.[1];
    return typeof found === "boolean" ? found : undefined;
  }
  return undefined;
}
