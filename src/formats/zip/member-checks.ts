/**
 * Checks on where a member's data lies and how it is encoded, made from directory facts
 * alone. A member failing any of them has no data we can (or should) read.
 */
import type { ZipMember } from "../model.js";
import {
  FLAG_ENCRYPTED, MAX_DEFLATE_RATIO, METHOD_DEFLATED, METHOD_STORED, type ZipDefect,
} from "./format.js";

/** End (exclusive) of a member's data in the file. */
export function dataEnd(member: ZipMember): number {
  return member.dataOffset + member.compressedSize;
}

/** Why the member's data cannot be read: out of bounds, unsupported encoding, or a declared deflate bomb. */
export function memberDataDefects(member: ZipMember, fileSize: number): ZipDefect[] {
  const defects: ZipDefect[] = [];
  const where = { member: member.name, offset: member.localHeaderOffset };
  if (member.dataOffset < 0) {
    defects.push({ code: "MEMBER_OUT_OF_BOUNDS", message: "member data has no known position: its local header is unreadable", ...where });
  } else if (dataEnd(member) > fileSize) {
    defects.push({
      code: "MEMBER_OUT_OF_BOUNDS",
      message: `member data (bytes ${member.dataOffset}..${dataEnd(member)}) runs past the end of the file (${fileSize} bytes)`,
      ...where,
    });
  }
  if ((member.flags & FLAG_ENCRYPTED) !== 0) {
    defects.push({ code: "UNSUPPORTED_COMPRESSION", message: "member is encrypted", ...where });
  } else if (member.method !== METHOD_STORED && member.method !== METHOD_DEFLATED) {
    defects.push({ code: "UNSUPPORTED_COMPRESSION", message: `compression method ${member.method} (only 0 stored and 8 deflate are read)`, ...where });
  } else if (member.method === METHOD_DEFLATED && member.uncompressedSize > member.compressedSize * MAX_DEFLATE_RATIO) {
    defects.push({
      code: "DEFLATE_BOMB",
      message: `member claims ${member.uncompressedSize} bytes from ${member.compressedSize} deflated bytes, beyond deflate's ~1032:1 limit`,
      ...where,
    });
  }
  return defects;
}

/**
 * Members whose [local header, data end) ranges overlap an earlier member's, or run into the
 * central directory: the trick behind overlapping-file zip bombs, and never written by torch.
 */
export function findOverlaps(members: readonly ZipMember[], centralDirectoryOffset: number, fileSize: number): ZipDefect[] {
  // Members whose range leaves the file are already MEMBER_OUT_OF_BOUNDS; their range means nothing.
  const placed = members.filter((m) => m.dataOffset >= 0 && dataEnd(m) <= fileSize).sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  const defects: ZipDefect[] = [];
  let reach: ZipMember | undefined;
  for (const member of placed) {
    if (reach !== undefined && member.localHeaderOffset < dataEnd(reach)) {
      defects.push({
        code: "MEMBER_OVERLAP",
        message: `member (bytes ${member.localHeaderOffset}..${dataEnd(member)}) overlaps ${JSON.stringify(reach.name)} (bytes ${reach.localHeaderOffset}..${dataEnd(reach)})`,
        member: member.name,
        offset: member.localHeaderOffset,
      });
    } else if (dataEnd(member) > centralDirectoryOffset && member.localHeaderOffset < centralDirectoryOffset) {
      defects.push({
        code: "MEMBER_OVERLAP",
        message: `member data (bytes ${member.dataOffset}..${dataEnd(member)}) runs into the central directory at byte ${centralDirectoryOffset}`,
        member: member.name,
        offset: member.localHeaderOffset,
      });
    }
    if (reach === undefined || dataEnd(member) > dataEnd(reach)) reach = member;
  }
  return defects;
}

/** Names used by more than one member: readers disagree on which copy wins. */
export function findDuplicateNames(members: readonly ZipMember[]): ZipDefect[] {
  const seen = new Set<string>();
  const defects: ZipDefect[] = [];
  for (const member of members) {
    if (seen.has(member.name)) {
      defects.push({ code: "DUPLICATE_MEMBER", message: "member name appears more than once in the central directory", member: member.name, offset: member.localHeaderOffset });
    }
    seen.add(member.name);
  }
  return defects;
}
