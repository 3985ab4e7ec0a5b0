/**
 * Parses central directory entries (APPNOTE 4.3.12) into members, applying zip64 extended
 * information (APPNOTE 4.5.3) to sizes and offsets. `dataOffset` stays -1 until the
 * member's local header has been read.
 */
import { CkptError } from "../../errors.js";
import type { ZipMember } from "../model.js";
import {
  CENTRAL_HEADER_SIGNATURE, CENTRAL_HEADER_SIZE, decodeName, readUInt64, ZIP64_EXTRA_ID,
} from "./format.js";

/** A member as the central directory describes it, with its raw name for comparing to the local header. */
export interface CentralEntry {
  member: ZipMember;
  nameBytes: Buffer;
}

/** Fields that zip64 may move into the extra field, by their 32-bit placeholder values. */
interface Zip64Fields {
  uncompressedSize: number;
  compressedSize: number;
  localHeaderOffset: number;
}

/**
 * Parses `entryCount` entries from the central directory bytes `directory` (which start at
 * file byte `directoryOffset`). Throws ZIP_MALFORMED naming the entry and its byte offset.
 */
export function parseCentralDirectory(
  directory: Buffer, directoryOffset: number, entryCount: number, file: string,
): CentralEntry[] {
  const entries: CentralEntry[] = [];
  let at = 0;
  for (let index = 0; index < entryCount; index++) {
    const offset = directoryOffset + at;
    const malformed = (what: string): CkptError =>
      new CkptError("ZIP_MALFORMED", `zip central directory entry ${index} ${what}`, { file, offset });
    if (at + CENTRAL_HEADER_SIZE > directory.length) throw malformed("runs past the end of the central directory");
    if (directory.readUInt32LE(at) !== CENTRAL_HEADER_SIGNATURE) throw malformed("lacks its PK\\x01\\x02 signature");
    const flags = directory.readUInt16LE(at + 8);
    const nameLength = directory.readUInt16LE(at + 28);
    const extraLength = directory.readUInt16LE(at + 30);
    const commentLength = directory.readUInt16LE(at + 32);
    const nameStart = at + CENTRAL_HEADER_SIZE;
    const extraStart = nameStart + nameLength;
    const end = extraStart + extraLength + commentLength;
    if (end > directory.length) throw malformed("has a name, extra field or comment running past the central directory");
    const nameBytes = directory.subarray(nameStart, extraStart);
    const fields = applyZip64Extra(
      directory.subarray(extraStart, extraStart + extraLength),
      {
        uncompressedSize: directory.readUInt32LE(at + 24),
        compressedSize: directory.readUInt32LE(at + 20),
        localHeaderOffset: directory.readUInt32LE(at + 42),
      },
      directory.readUInt16LE(at + 34) === 0xffff,
      malformed,
    );
    entries.push({
      nameBytes,
      member: {
        name: decodeName(nameBytes, flags),
        method: directory.readUInt16LE(at + 10),
        flags,
        crc32: directory.readUInt32LE(at + 16),
        compressedSize: fields.compressedSize,
        uncompressedSize: fields.uncompressedSize,
        localHeaderOffset: fields.localHeaderOffset,
        dataOffset: -1,
      },
    });
    at = end;
  }
  return entries;
}

/**
 * Replaces each 0xFFFFFFFF placeholder with its 64-bit value from the zip64 extra field,
 * which holds only the placeholders' values, in the fixed order usize, csize, offset, disk.
 * Without a zip64 field the placeholder is kept as a literal value (as Python's zipfile does).
 */
export function applyZip64Extra(
  extra: Buffer, fields: Zip64Fields, diskIsPlaceholder: boolean, malformed: (what: string) => Error,
): Zip64Fields {
  const result = { ...fields };
  let at = 0;
  // Some writers pad the extra field with fewer than 4 bytes; stop at what cannot be a header.
  while (at + 4 <= extra.length) {
    const id = extra.readUInt16LE(at);
    const length = extra.readUInt16LE(at + 2);
    const end = at + 4 + length;
    if (end > extra.length) throw malformed(`has an extra field 0x${id.toString(16)} running past its entry`);
    if (id === ZIP64_EXTRA_ID) {
      let cursor = at + 4;
      const take = (name: string): number => {
        if (cursor + 8 > end) throw malformed(`has a zip64 extra field too short to hold its ${name}`);
        const value = readUInt64(extra, cursor);
        cursor += 8;
        return value;
      };
      if (fields.uncompressedSize === 0xffffffff) result.uncompressedSize = take("uncompressed size");
      if (fields.compressedSize === 0xffffffff) result.compressedSize = take("compressed size");
      if (fields.localHeaderOffset === 0xffffffff) result.localHeaderOffset = take("local header offset");
      if (diskIsPlaceholder && cursor + 4 > end) throw malformed("has a zip64 extra field too short to hold its disk number");
      return result;
    }
    at = end;
  }
  return result;
}
