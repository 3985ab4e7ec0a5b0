/**
 * Record signatures and fixed sizes of the zip format (PKWARE APPNOTE.TXT 6.3.x, section 4.3).
 * Only what ckptguard reads: local headers, central directory, end records, data descriptors.
 */
import type { IntegrityFacts } from "../model.js";

/** One non-fatal defect, as readers report it into `IntegrityFacts.defects`. */
export type ZipDefect = IntegrityFacts["defects"][number];

export const LOCAL_HEADER_SIGNATURE = 0x04034b50; // "PK\x03\x04", APPNOTE 4.3.7
export const CENTRAL_HEADER_SIGNATURE = 0x02014b50; // "PK\x01\x02", APPNOTE 4.3.12
export const EOCD_SIGNATURE = 0x06054b50; // "PK\x05\x06", APPNOTE 4.3.16
export const ZIP64_EOCD_SIGNATURE = 0x06064b50; // "PK\x06\x06", APPNOTE 4.3.14
export const ZIP64_LOCATOR_SIGNATURE = 0x07064b50; // "PK\x06\x07", APPNOTE 4.3.15

export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const EOCD_SIZE = 22;
export const ZIP64_EOCD_SIZE = 56;
export const ZIP64_LOCATOR_SIZE = 20;
/** The EOCD comment is at most 65535 bytes, so the record starts within this many bytes of the end. */
export const EOCD_SEARCH_SPAN = EOCD_SIZE + 0xffff;

/** Extra-field header id of the zip64 extended information (APPNOTE 4.5.3). */
export const ZIP64_EXTRA_ID = 0x0001;

export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;

/** General-purpose flag bits (APPNOTE 4.4.4). */
export const FLAG_ENCRYPTED = 1 << 0;
export const FLAG_DATA_DESCRIPTOR = 1 << 3;
export const FLAG_UTF8_NAME = 1 << 11;

/**
 * Deflate cannot expand data by more than about 1032:1 (a 258-byte match coded in ~2 bits);
 * 1100 leaves room for block headers of tiny members. A member claiming more is refused
 * before we inflate a single byte.
 */
export const MAX_DEFLATE_RATIO = 1100;

/** Reads a little-endian u64 as a number; values past 2^53 stay huge, which every bound rejects. */
export function readUInt64(buffer: Buffer, offset: number): number {
  return Number(buffer.readBigUInt64LE(offset));
}

/** Decodes a member name: UTF-8 when flag bit 11 says so, else byte-per-char (CP437's ASCII half). */
export function decodeName(bytes: Buffer, flags: number): string {
  return bytes.toString((flags & FLAG_UTF8_NAME) !== 0 ? "utf8" : "latin1");
}
