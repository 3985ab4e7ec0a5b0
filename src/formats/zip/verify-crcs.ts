/**
 * Checks the CRC-32 of every member in one forward pass over the file. Torch lays members
 * out back to back, so big sequential reads (with the next one already in flight) cover
 * many members each, and the CRC runs at memory speed; this pass is most of `verify`'s time.
 */
import { crc32 } from "./crc32.js";
import type { FileSource } from "../file-source.js";
import type { IntegrityFacts, ZipMember } from "../model.js";
import { METHOD_STORED, type ZipDefect } from "./format.js";
import { crcStoredMembersInParallel, parallelWorkerCount, type MemberCrc } from "./crc-parallel.js";
import type { CrcPool } from "./crc-pool.js";
import { inflateAndCrc } from "./inflate-crc.js";
import { dataEnd, memberDataDefects } from "./member-checks.js";
import { ReadWindow } from "./read-window.js";

/** Bytes per read; two buffers of this size (current + read-ahead), 8 MiB in all, are what the pass holds. */
const CRC_CHUNK_SIZE = 4 * 1024 * 1024;

export interface VerifyCrcOptions {
  /** Called as compressed bytes are read: (bytes done, total bytes to read). */
  onProgress?: (done: number, total: number) => void;
  /** Threads for stored members, this one included (N: N - 1 workers); by default 1 below 256 MiB of stored data, else one per core (max 4). */
  workers?: number;
  /** Threads shared with other streams (a sharded checkpoint's): stored members go there as one job; `workers` is ignored. */
  pool?: CrcPool;
}

/**
 * Computes every readable member's CRC-32 (inflating deflated ones) and records mismatches,
 * size mismatches and defects into `facts`; sets `facts.crcChecked`. Members whose data
 * cannot be read (out of bounds, unsupported, declared bombs, overlapping) are skipped and
 * reported as defects unless `facts.defects` already names them.
 */
export async function verifyMemberCrcs(
  source: FileSource, members: ZipMember[], facts: IntegrityFacts, options: VerifyCrcOptions = {},
): Promise<void> {
  const readable = selectReadableMembers(members, source.size, facts.defects);
  const total = readable.reduce((sum, member) => sum + member.compressedSize, 0);
  const progress = new ProgressReporter(total, options.onProgress);
  const stored = readable.filter((member) => member.method === METHOD_STORED);
  const workers = options.workers ?? parallelWorkerCount(stored.reduce((sum, member) => sum + member.compressedSize, 0));
  let sequential = readable;
  if (options.pool !== undefined || workers > 1) {
    let crcs: Map<ZipMember, MemberCrc>;
    if (options.pool !== undefined) {
      crcs = await options.pool.crcMembers(source.path, stored, source.base);
      progress.advanceTo(progress.done + stored.reduce((sum, member) => sum + member.compressedSize, 0));
    } else {
      crcs = await crcStoredMembersInParallel(source.path, stored, workers, (bytes) => progress.advanceTo(progress.done + bytes), source.base);
    }
    for (const member of stored) recordStoredResult(member, crcs.get(member)!.crc, facts);
    sequential = readable.filter((member) => member.method !== METHOD_STORED);
  }
  if (sequential.length === 0) {
    // Everything went to worker threads: no read buffers on this thread.
    progress.finish();
    facts.crcChecked = true;
    return;
  }
  const lastEnd = sequential.reduce((max, member) => Math.max(max, dataEnd(member)), 0);
  const window = new ReadWindow(source, { bufferSize: CRC_CHUNK_SIZE, readAhead: true, end: lastEnd });
  try {
    for (const member of sequential) {
      if (member.method === METHOD_STORED) await checkStoredMember(window, member, facts, progress);
      else await checkDeflatedMember(window, member, facts);
      progress.advanceTo(progress.done + (member.method === METHOD_STORED ? 0 : member.compressedSize));
    }
  } finally {
    await window.settle();
  }
  progress.finish();
  facts.crcChecked = true;
}

/** Readable members in file order; the rest get a defect unless one already names them. */
function selectReadableMembers(members: readonly ZipMember[], fileSize: number, defects: ZipDefect[]): ZipMember[] {
  const reported = new Set(defects.map((defect) => defect.member));
  const report = (defect: ZipDefect): void => {
    if (!reported.has(defect.member)) defects.push(defect);
  };
  const candidates: ZipMember[] = [];
  for (const member of members) {
    const problems = memberDataDefects(member, fileSize);
    if (problems.length === 0) candidates.push(member);
    else problems.forEach(report);
  }
  candidates.sort((a, b) => a.dataOffset - b.dataOffset);
  // Data read twice is the overlapping-member zip bomb; it is read once, for the first member.
  const readable: ZipMember[] = [];
  let reach = 0;
  for (const member of candidates) {
    if (member.dataOffset < reach) {
      report({ code: "MEMBER_OVERLAP", message: "member data overlaps an earlier member's data; not checked", member: member.name, offset: member.dataOffset });
      continue;
    }
    readable.push(member);
    reach = Math.max(reach, dataEnd(member));
  }
  return readable;
}

async function checkStoredMember(window: ReadWindow, member: ZipMember, facts: IntegrityFacts, progress: ProgressReporter): Promise<void> {
  let crc = 0;
  let position = member.dataOffset;
  const end = dataEnd(member);
  while (position < end) {
    const view = await window.viewAt(position, end - position);
    crc = crc32(view, crc);
    position += view.length;
    progress.advanceTo(progress.done + view.length);
  }
  recordStoredResult(member, crc, facts);
}

function recordStoredResult(member: ZipMember, crc: number, facts: IntegrityFacts): void {
  if (member.compressedSize !== member.uncompressedSize) {
    facts.sizeMismatches.push({
      member: member.name, expected: member.uncompressedSize, actual: member.compressedSize,
      reason: "stored member's compressed and uncompressed sizes differ",
    });
  }
  if (crc !== member.crc32) facts.crcMismatches.push({ member: member.name, expected: member.crc32, actual: crc });
}

async function checkDeflatedMember(window: ReadWindow, member: ZipMember, facts: IntegrityFacts): Promise<void> {
  const outcome = await inflateAndCrc(window, member);
  const expected = member.uncompressedSize;
  if (outcome.overflowed) {
    facts.sizeMismatches.push({ member: member.name, expected, actual: outcome.produced, reason: "inflates past its recorded size (deflate bomb?)" });
  } else if (outcome.error !== undefined) {
    facts.defects.push({ code: "DEFLATE_CORRUPT", message: `deflate stream is corrupt: ${outcome.error.message}`, member: member.name, offset: member.dataOffset });
  } else if (outcome.produced !== expected) {
    facts.sizeMismatches.push({ member: member.name, expected, actual: outcome.produced, reason: "inflates to fewer bytes than its recorded size" });
  } else if (outcome.crc !== member.crc32) {
    facts.crcMismatches.push({ member: member.name, expected: member.crc32, actual: outcome.crc });
  }
}

/** Reports progress at most once per chunk's worth of bytes, and always at the end. */
class ProgressReporter {
  done = 0;
  private reported = 0;

  constructor(private readonly total: number, private readonly onProgress?: (done: number, total: number) => void) {}

  advanceTo(done: number): void {
    this.done = done;
    if (this.onProgress !== undefined && done - this.reported >= CRC_CHUNK_SIZE) {
      this.reported = done;
      this.onProgress(done, this.total);
    }
  }

  finish(): void {
    this.onProgress?.(this.total, this.total);
  }
}
