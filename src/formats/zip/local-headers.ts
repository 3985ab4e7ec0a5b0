/**
 * Reads each member's local header (APPNOTE 4.3.7) to learn where its data starts, and
 * checks that the header agrees with the central directory. Torch pads the local extra
 * field (id "FB") so stored data starts 64-byte aligned, which is why the data offset can
 * only be learned from the local header itself.
 */
import type { FileSource } from "../file-source.js";
import {
  FLAG_DATA_DESCRIPTOR, LOCAL_HEADER_SIGNATURE, LOCAL_HEADER_SIZE, type ZipDefect,
} from "./format.js";
import type { CentralEntry } from "./central-directory.js";
import { applyZip64Extra } from "./central-directory.js";

/** Headers closer together than this are fetched by one read. */
const GROUP_SPAN = 64 * 1024;
/** Room guessed for a local extra field: torch's alignment pad (<= 64 + 4) plus a zip64 field (20). */
const EXTRA_GUESS = 128;

interface HeaderGroup {
  start: number;
  bytes: number;
  entries: CentralEntry[];
}

/**
 * Sets `dataOffset` of every entry whose local header can be read; reports the others as defects.
 * Reads synchronously: a checkpoint's headers sit megabytes apart, one small read each, and an
 * async read per header would cost a thread-pool round trip apiece (FileSource.readSync).
 */
export function readLocalHeaders(source: FileSource, entries: CentralEntry[], defects: ZipDefect[]): void {
  const inFileOrder = [...entries].sort((a, b) => a.member.localHeaderOffset - b.member.localHeaderOffset);
  for (const group of groupHeaders(inFileOrder, source.size)) {
    const bytes = source.readSync(group.start, group.bytes, "zip local headers");
    for (const entry of group.entries) {
      const defect = readLocalHeader(source, entry, bytes, group.start);
      if (defect !== undefined) defects.push(defect);
    }
  }
}

/** Packs headers (in file order) into reads of at most GROUP_SPAN bytes, guessing each header's length. */
function groupHeaders(inFileOrder: CentralEntry[], fileSize: number): HeaderGroup[] {
  const groups: HeaderGroup[] = [];
  let group: HeaderGroup | undefined;
  for (const entry of inFileOrder) {
    const start = Math.min(entry.member.localHeaderOffset, fileSize);
    const end = Math.min(start + LOCAL_HEADER_SIZE + entry.nameBytes.length + EXTRA_GUESS, fileSize);
    if (group === undefined || end - group.start > GROUP_SPAN) {
      group = { start, bytes: 0, entries: [] };
      groups.push(group);
    }
    group.bytes = Math.max(group.bytes, end - group.start);
    group.entries.push(entry);
  }
  return groups;
}

function readLocalHeader(
  source: FileSource, entry: CentralEntry, group: Buffer, groupStart: number,
): ZipDefect | undefined {
  const { member } = entry;
  const offset = member.localHeaderOffset;
  const outOfBounds = (what: string): ZipDefect => ({
    code: "MEMBER_OUT_OF_BOUNDS",
    message: `${what} at byte ${offset} runs past the end of the file (${source.size} bytes)`,
    member: member.name,
    offset,
  });
  if (offset + LOCAL_HEADER_SIZE > source.size) return outOfBounds("local header");
  const bytesAt = (position: number, length: number): Buffer =>
    position + length <= groupStart + group.length
      ? group.subarray(position - groupStart, position - groupStart + length)
      : source.readSync(position, length, "zip local header");
  const header = bytesAt(offset, LOCAL_HEADER_SIZE);
  if (header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
    return { code: "LOCAL_HEADER_MISMATCH", message: `no local header signature at byte ${offset}`, member: member.name, offset };
  }
  const nameLength = header.readUInt16LE(26);
  const variableLength = nameLength + header.readUInt16LE(28);
  const variableStart = offset + LOCAL_HEADER_SIZE;
  if (variableStart + variableLength > source.size) return outOfBounds("local header name and extra field");
  const variable = bytesAt(variableStart, variableLength);
  member.dataOffset = variableStart + variableLength;

  const differing = compareWithCentral(entry, header, variable.subarray(0, nameLength), variable.subarray(nameLength));
  if (differing.length === 0) return undefined;
  return {
    code: "LOCAL_HEADER_MISMATCH",
    message: `local header at byte ${offset} disagrees with the central directory on ${differing.join(", ")}`,
    member: member.name,
    offset,
  };
}

/** Names the fields in which the local header contradicts the central directory. */
function compareWithCentral(entry: CentralEntry, header: Buffer, name: Buffer, extra: Buffer): string[] {
  const { member } = entry;
  const differing: string[] = [];
  if (!name.equals(entry.nameBytes)) differing.push(`name (${JSON.stringify(name.toString("utf8"))})`);
  const method = header.readUInt16LE(8);
  if (method !== member.method) differing.push(`compression method (${method})`);
  // With bit 3 set, crc and sizes follow the data in a data descriptor and the local
  // header holds zeros (APPNOTE 4.4.4); torch's writer sets it on every member.
  const flags = header.readUInt16LE(6);
  if (((flags | member.flags) & FLAG_DATA_DESCRIPTOR) !== 0) return differing;
  const crc = header.readUInt32LE(14);
  if (crc !== member.crc32) differing.push(`crc32 (0x${crc.toString(16).padStart(8, "0")})`);
  let sizes;
  try {
    sizes = applyZip64Extra(
      extra,
      { compressedSize: header.readUInt32LE(18), uncompressedSize: header.readUInt32LE(22), localHeaderOffset: 0 },
      false,
      (what) => new Error(what),
    );
  } catch {
    differing.push("zip64 sizes (malformed extra field)");
    return differing;
  }
  if (sizes.compressedSize !== member.compressedSize) differing.push(`compressed size (${sizes.compressedSize})`);
  if (sizes.uncompressedSize !== member.uncompressedSize) differing.push(`uncompressed size (${sizes.uncompressedSize})`);
  return differing;
}
