/**
 * Finds where the central directory is: the End Of Central Directory record at the end of
 * the file, and the zip64 locator + record that torch always writes before it
 * (caffe2/serialize/inline_container.cc writes zip64 records unconditionally).
 */
import { CkptError } from "../../errors.js";
import type { FileSource } from "../file-source.js";
import {
  EOCD_SEARCH_SPAN, EOCD_SIGNATURE, EOCD_SIZE, LOCAL_HEADER_SIGNATURE, readUInt64,
  ZIP64_EOCD_SIGNATURE, ZIP64_EOCD_SIZE, ZIP64_LOCATOR_SIGNATURE, ZIP64_LOCATOR_SIZE,
} from "./format.js";

export interface EndOfCentralDirectory {
  /** Byte offset of the (classic) EOCD record. */
  offset: number;
  entryCount: number;
  centralDirectoryOffset: number;
  centralDirectorySize: number;
  comment: Buffer;
  isZip64: boolean;
  /** The central directory must end by here: the zip64 EOCD record, or the EOCD. */
  centralDirectoryLimit: number;
}

/** Reads the end records, refusing files that are not zips, are cut short, or point outside themselves. */
export async function readEndOfCentralDirectory(source: FileSource): Promise<EndOfCentralDirectory> {
  const file = source.path;
  const startsAsZip = await checkLeadingSignature(source);
  const tailLength = Math.min(source.size, EOCD_SEARCH_SPAN);
  const tailStart = source.size - tailLength;
  const tail = await source.read(tailStart, tailLength, "zip end-of-central-directory search");
  const at = findEocd(tail);
  if (at < 0) {
    const message = startsAsZip
      ? "zip end-of-central-directory record missing: file truncated?"
      : "zip end-of-central-directory record missing";
    throw new CkptError("TRUNCATED", message, { file, offset: source.size });
  }
  const offset = tailStart + at;
  const diskNumber = tail.readUInt16LE(at + 4);
  const centralDirectoryDisk = tail.readUInt16LE(at + 6);
  let entryCount = tail.readUInt16LE(at + 10);
  let centralDirectorySize = tail.readUInt32LE(at + 12);
  let centralDirectoryOffset = tail.readUInt32LE(at + 16);
  const comment = Buffer.from(tail.subarray(at + EOCD_SIZE, at + EOCD_SIZE + tail.readUInt16LE(at + 20)));

  const zip64 = await readZip64Record(source, offset);
  if (zip64 !== undefined) {
    ({ entryCount, centralDirectorySize, centralDirectoryOffset } = zip64);
  } else {
    if (entryCount === 0xffff || centralDirectorySize === 0xffffffff || centralDirectoryOffset === 0xffffffff) {
      throw new CkptError("ZIP_MALFORMED", "zip end record defers to a zip64 record that is missing", { file, offset });
    }
    if (diskNumber !== 0 || centralDirectoryDisk !== 0) {
      throw new CkptError("ZIP_MALFORMED", "multi-disk (spanned) zip archives are not supported", { file, offset });
    }
  }
  const centralDirectoryLimit = zip64?.offset ?? offset;
  checkCentralDirectoryBounds(source, centralDirectoryOffset, centralDirectorySize, centralDirectoryLimit, entryCount);
  return {
    offset, entryCount, centralDirectoryOffset, centralDirectorySize, comment,
    isZip64: zip64 !== undefined, centralDirectoryLimit,
  };
}

/** True when the file starts with a local header; an empty archive may start with its EOCD. */
async function checkLeadingSignature(source: FileSource): Promise<boolean> {
  if (source.size < 4) {
    const what = source.size === 0 ? "file is empty" : `file is only ${source.size} bytes`;
    throw new CkptError("NOT_A_CHECKPOINT", `${what}, too short to be a zip checkpoint`, { file: source.path });
  }
  const signature = (await source.read(0, 4, "zip signature")).readUInt32LE(0);
  if (signature !== LOCAL_HEADER_SIGNATURE && signature !== EOCD_SIGNATURE) {
    throw new CkptError("NOT_A_CHECKPOINT", "file does not start with a zip signature (PK\\x03\\x04)", {
      file: source.path, offset: 0,
    });
  }
  return signature === LOCAL_HEADER_SIGNATURE;
}

/** Index in `tail` of the last EOCD signature whose comment fits in the file, or -1. */
function findEocd(tail: Buffer): number {
  for (let at = tail.length - EOCD_SIZE; at >= 0; at--) {
    if (tail.readUInt32LE(at) === EOCD_SIGNATURE && at + EOCD_SIZE + tail.readUInt16LE(at + 20) <= tail.length) {
      return at;
    }
  }
  return -1;
}

interface Zip64Record {
  offset: number;
  entryCount: number;
  centralDirectorySize: number;
  centralDirectoryOffset: number;
}

/** Reads the zip64 EOCD record when a locator sits just before the EOCD (APPNOTE 4.3.14-15). */
async function readZip64Record(source: FileSource, eocdOffset: number): Promise<Zip64Record | undefined> {
  if (eocdOffset < ZIP64_LOCATOR_SIZE) return undefined;
  const locatorOffset = eocdOffset - ZIP64_LOCATOR_SIZE;
  const locator = await source.read(locatorOffset, ZIP64_LOCATOR_SIZE, "zip64 end-of-central-directory locator");
  if (locator.readUInt32LE(0) !== ZIP64_LOCATOR_SIGNATURE) return undefined;
  const file = source.path;
  const offset = readUInt64(locator, 8);
  if (offset + ZIP64_EOCD_SIZE > locatorOffset) {
    throw new CkptError("ZIP_MALFORMED", `zip64 locator points at byte ${offset}, past the records that follow it`, {
      file, offset: locatorOffset,
    });
  }
  const record = await source.read(offset, ZIP64_EOCD_SIZE, "zip64 end-of-central-directory record");
  if (record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) {
    throw new CkptError("ZIP_MALFORMED", "zip64 locator does not point at a zip64 end-of-central-directory record", {
      file, offset,
    });
  }
  if (record.readUInt32LE(16) !== 0 || record.readUInt32LE(20) !== 0) {
    throw new CkptError("ZIP_MALFORMED", "multi-disk (spanned) zip archives are not supported", { file, offset });
  }
  return {
    offset,
    entryCount: readUInt64(record, 32),
    centralDirectorySize: readUInt64(record, 40),
    centralDirectoryOffset: readUInt64(record, 48),
  };
}

function checkCentralDirectoryBounds(
  source: FileSource, offset: number, size: number, limit: number, entryCount: number,
): void {
  const file = source.path;
  if (offset + size > source.size) {
    throw new CkptError(
      "TRUNCATED",
      `zip central directory (bytes ${offset}..${offset + size}) extends beyond the end of the file at ${source.size}`,
      { file, offset },
    );
  }
  if (offset + size > limit) {
    throw new CkptError("ZIP_MALFORMED", `zip central directory (bytes ${offset}..${offset + size}) overlaps the end records at ${limit}`, {
      file, offset,
    });
  }
  // Each central entry takes at least 46 bytes, so the count is bounded before anything is allocated for it.
  if (entryCount > Math.floor(size / 46)) {
    throw new CkptError("ZIP_MALFORMED", `zip declares ${entryCount} entries but its ${size}-byte central directory holds at most ${Math.floor(size / 46)}`, {
      file, offset,
    });
  }
}
