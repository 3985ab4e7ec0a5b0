/**
 * Reads one member whole (the pickle, the version record): small members a reader needs
 * as bytes. Bulk tensor data is never read this way; verify streams it instead.
 */
import { inflateRawSync } from "node:zlib";
import { smallCrc32 } from "./crc32.js";
import { CkptError } from "../../errors.js";
import type { FileSource } from "../file-source.js";
import type { ZipMember } from "../model.js";
import { METHOD_STORED } from "./format.js";
import { memberDataDefects } from "./member-checks.js";

/** Deflate's worst-case expansion of incompressible data: 5 bytes per 16 KiB stored block, plus slack. */
function maxCompressedSize(uncompressedSize: number): number {
  return uncompressedSize + Math.ceil(uncompressedSize / 16384) * 5 + 64;
}

/**
 * Reads a member's uncompressed bytes (stored or deflated), refusing members larger than
 * `maxBytes` (MEMBER_TOO_LARGE) or whose data is unreadable (the member's defect code).
 * Throws CRC_MISMATCH or SIZE_MISMATCH when the bytes disagree with the central directory,
 * and DEFLATE_CORRUPT when the deflate stream is broken.
 */
export async function readMember(source: FileSource, member: ZipMember, maxBytes: number): Promise<Buffer> {
  const where = { file: source.path, member: member.name, offset: member.dataOffset };
  const [defect] = memberDataDefects(member, source.size);
  if (defect !== undefined) throw new CkptError(defect.code, defect.message, where);
  if (member.uncompressedSize > maxBytes || member.compressedSize > maxCompressedSize(maxBytes)) {
    throw new CkptError(
      "MEMBER_TOO_LARGE",
      `member is ${Math.max(member.uncompressedSize, member.compressedSize)} bytes; at most ${maxBytes} are read whole`,
      where,
    );
  }
  const raw = await source.read(member.dataOffset, member.compressedSize, `zip member ${member.name}`);
  const bytes = member.method === METHOD_STORED ? raw : inflateBounded(raw, member, where);
  if (bytes.length !== member.uncompressedSize) {
    throw new CkptError("SIZE_MISMATCH", `member holds ${bytes.length} bytes but records ${member.uncompressedSize}`, where);
  }
  const actual = smallCrc32(bytes);
  if (actual !== member.crc32) {
    throw new CkptError(
      "CRC_MISMATCH",
      `member CRC-32 is 0x${hex(actual)} but the zip records 0x${hex(member.crc32)}`,
      where,
    );
  }
  return bytes;
}

function inflateBounded(raw: Buffer, member: ZipMember, where: { file: string; member: string; offset: number }): Buffer {
  try {
    // maxOutputLength makes zlib stop at the first byte past the recorded size.
    return inflateRawSync(raw, { maxOutputLength: Math.max(1, member.uncompressedSize) });
  } catch (error) {
    if (error instanceof RangeError) {
      throw new CkptError("SIZE_MISMATCH", `member inflates past its recorded ${member.uncompressedSize} bytes (deflate bomb?)`, where, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new CkptError("DEFLATE_CORRUPT", `deflate stream is corrupt: ${message}`, where, { cause: error });
  }
}

function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}
