import { CkptError } from "../errors.js";
import type { FileSource } from "./file-source.js";
import { emptyIntegrity, type CheckpointModel, type IntegrityFacts, type StorageRecord, type ZipMember } from "./model.js";
import { readPickle, type PickleResult } from "./pickle/machine.js";
import { torchPickleOptions } from "./torch-rebuild.js";
import { collectTensors } from "./tree.js";
import type { CrcPool, VerifyCrcOptions } from "./zip.js";
import { readZipDirectory } from "./zip/directory.js";
import { readMember } from "./zip/read-member.js";

/** What a reader should do beyond building the model. */
export interface ReadOptions {
  /** Stream every zip member through CRC-32 (verify); inspect skips it. */
  checkCrc: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Worker threads for the CRC pass (1: this thread only); by default chosen by size. */
  workers?: number;
  /** CRC threads shared by the streams of a sharded checkpoint. */
  crcPool?: CrcPool;
}

/** data.pkl of a real checkpoint is a few MB even for 70B-parameter models; 1 GiB bounds hostile ones. */
const MAX_PICKLE_BYTES = 1 << 30;
/** A deflated data.pkl may inflate past the file's size; up to this much is always allowed. */
const PICKLE_BYTES_FLOOR = 128 << 20;

/** How much of data.pkl we agree to hold: bounded by the file (16x covers deflate) so tiny hostile files stay tiny. */
function pickleByteLimit(fileSize: number): number {
  return Math.min(MAX_PICKLE_BYTES, Math.max(PICKLE_BYTES_FLOOR, fileSize * 16));
}

/**
 * The torch zip layout (torch/serialization.py `_save`): `<archive>/data.pkl`, one
 * member `<archive>/data/<key>` per storage, `<archive>/version`, and since torch 2.1
 * `<archive>/byteorder`. The archive prefix is the file's stem at save time, so it is
 * found from the data.pkl member rather than assumed.
 */
export async function readTorchZip(source: FileSource, options: ReadOptions): Promise<CheckpointModel> {
  const directory = await readZipDirectory(source);
  const integrity = emptyIntegrity();
  integrity.defects.push(...directory.defects);
  const byName = new Map(directory.members.map((m) => [m.name, m]));
  const pickleMember = directory.members.find((m) => m.name === "data.pkl" || m.name.endsWith("/data.pkl"));
  if (!pickleMember) {
    throw new CkptError("NOT_A_CHECKPOINT", "zip archive has no data.pkl member: not a torch checkpoint", { file: source.path });
  }
  const prefix = pickleMember.name.slice(0, pickleMember.name.length - "data.pkl".length);
  const byteOrder = await readByteOrder(source, byName.get(`${prefix}byteorder`));
  const formatVersion = await readVersion(source, byName.get(`${prefix}version`) ?? byName.get(`${prefix}.data/version`));

  // The CRC pass (worker threads on large files) runs while this thread parses the pickle.
  // readMember checks data.pkl's own CRC, so a flipped pickle byte still reads as CRC_MISMATCH.
  // Loaded on demand: inspect never CRCs, and should not pay for loading the CRC pass.
  const crcPass = options.checkCrc
    ? import("./zip/verify-crcs.js").then(({ verifyMemberCrcs }) => verifyMemberCrcs(source, directory.members, integrity, crcOptions(options)))
    : Promise.resolve();
  let parsed: PickleResult;
  try {
    parsed = await parseDataPickle(source, pickleMember, prefix, byName, byteOrder, integrity);
  } catch (error) {
    await crcPass.catch(() => undefined); // never leave reads running on a file the caller will close
    throw error;
  }
  await crcPass;
  const tensors = collectTensors(parsed.value);
  return {
    path: source.path,
    format: "torch-zip",
    fileSize: source.size,
    root: parsed.value,
    tensors,
    storages: uniqueStorages(tensors.map((t) => t.storage)),
    members: directory.members,
    unsafeGlobals: parsed.unsafeGlobals,
    integrity,
    versions: formatVersion === undefined ? {} : { formatVersion },
  };
}

function crcOptions(options: ReadOptions): VerifyCrcOptions {
  return {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.crcPool ? { pool: options.crcPool } : {}),
  };
}

/** Reads and unpickles data.pkl; each persistent id becomes a storage located at its `data/<key>` member. */
async function parseDataPickle(
  source: FileSource, pickleMember: ZipMember, prefix: string, byName: ReadonlyMap<string, ZipMember>,
  byteOrder: "little" | "big", integrity: IntegrityFacts,
): Promise<PickleResult> {
  const pickleBytes = await readMember(source, pickleMember, pickleByteLimit(source.size));
  const pickleOptions = torchPickleOptions(pickleMember.name, (key, dtype, declaredElements) => {
    const member = byName.get(`${prefix}data/${key}`);
    const record: StorageRecord = { key, dtype, bytes: undefined, declaredElements, byteOrder };
    if (member) {
      record.member = member.name;
      // Torch stores storages uncompressed (so they can be mmap'ed); a compressed one has no direct byte range.
      if (member.method === 0) record.bytes = { offset: member.dataOffset, length: member.uncompressedSize };
      else integrity.defects.push({ code: "STORAGE_COMPRESSED", message: `storage member ${member.name} is compressed (method ${member.method})`, member: member.name });
    }
    return record;
  });
  const parsed = readPickle(pickleBytes, 0, pickleOptions);
  if (parsed.end !== pickleBytes.length) {
    integrity.defects.push({ code: "TRAILING_DATA", message: `${pickleBytes.length - parsed.end} bytes after the pickle's STOP in ${pickleMember.name}`, member: pickleMember.name });
  }
  return parsed;
}

async function readByteOrder(source: FileSource, member: ZipMember | undefined): Promise<"little" | "big"> {
  if (!member) return "little"; // files before torch 2.1 carry no record and were always little-endian
  const text = (await readMember(source, member, 64)).toString("latin1").trim();
  return text === "big" ? "big" : "little";
}

async function readVersion(source: FileSource, member: ZipMember | undefined): Promise<number | undefined> {
  if (!member) return undefined;
  const text = (await readMember(source, member, 64)).toString("latin1").trim();
  const version = Number(text);
  return Number.isInteger(version) ? version : undefined;
}

export function uniqueStorages(storages: StorageRecord[]): StorageRecord[] {
  return [...new Set(storages)];
}
