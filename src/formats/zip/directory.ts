/**
 * Reads a zip's directory: the end records, every central directory entry, and every
 * local header, and reports structural defects without reading any member's data.
 */
import type { FileSource } from "../file-source.js";
import type { ByteRange, IntegrityFacts, ZipMember } from "../model.js";
import { parseCentralDirectory } from "./central-directory.js";
import { readEndOfCentralDirectory } from "./end-of-central-directory.js";
import { readLocalHeaders } from "./local-headers.js";
import { findDuplicateNames, findOverlaps, memberDataDefects } from "./member-checks.js";

export interface ZipDirectory {
  /**
   * Members in central directory order. `dataOffset` is -1 for a member whose local header
   * could not be read (that member also has a defect).
   */
  members: ZipMember[];
  /** Non-fatal structural defects, each naming its member and byte offset. */
  defects: IntegrityFacts["defects"];
  /** The archive comment (torch writes none). */
  comment: string;
  /** True when the archive carries zip64 end records (torch always writes them). */
  isZip64: boolean;
  /** Where the central directory lies in the file. */
  centralDirectory: ByteRange;
}

/**
 * Reads the directory of a zip file. Throws NOT_A_CHECKPOINT for a file that is not a zip,
 * TRUNCATED when the end records or central directory are cut off, and ZIP_MALFORMED for
 * central directory entries that cannot be parsed.
 */
export async function readZipDirectory(source: FileSource): Promise<ZipDirectory> {
  const end = await readEndOfCentralDirectory(source);
  const directory = await source.read(end.centralDirectoryOffset, end.centralDirectorySize, "zip central directory");
  const entries = parseCentralDirectory(directory, end.centralDirectoryOffset, end.entryCount, source.path);
  const defects: IntegrityFacts["defects"] = [];
  readLocalHeaders(source, entries, defects);
  const members = entries.map((entry) => entry.member);
  for (const member of members) {
    if (member.dataOffset >= 0) defects.push(...memberDataDefects(member, source.size));
  }
  defects.push(...findOverlaps(members, end.centralDirectoryOffset, source.size), ...findDuplicateNames(members));
  return {
    members,
    defects,
    comment: end.comment.toString("utf8"),
    isZip64: end.isZip64,
    centralDirectory: { offset: end.centralDirectoryOffset, length: end.centralDirectorySize },
  };
}
