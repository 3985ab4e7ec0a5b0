/**
 * Splits the CRC pass over stored members across worker threads. A checkpoint's bytes
 * are almost all stored tensor members, so on large files this halves the pass on two
 * cores (DESIGN.md's performance budget: 0.40 s on one thread, 0.32 s on two).
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { CkptError } from "../../errors.js";
import type { ZipMember } from "../model.js";
import { splitContiguousShares } from "../split-shares.js";

/** Below this many stored bytes, starting workers costs more than it saves. */
export const PARALLEL_MIN_BYTES = 256 * 1024 * 1024;

export interface CrcJob {
  path: string;
  members: Array<{ dataOffset: number; size: number }>;
}

export type CrcWorkerMessage =
  | { kind: "progress"; bytes: number }
  | { kind: "done"; results: Array<{ crc: number; read: number }> };

export interface MemberCrc {
  crc: number;
  /** Bytes actually read (less than the size when the file shrank). */
  read: number;
}

export function parallelWorkerCount(storedBytes: number): number {
  if (storedBytes < PARALLEL_MIN_BYTES) return 1;
  return Math.max(1, Math.min(availableParallelism(), 4));
}

/**
 * CRC-32 of each member's stored bytes, computed by `workers` threads over contiguous shares.
 * `base` is where the zip starts in the file (a window of a `.distcp` file; 0 otherwise).
 */
export async function crcStoredMembersInParallel(
  path: string, members: readonly ZipMember[], workers: number, onBytes: (bytes: number) => void, base = 0,
): Promise<Map<ZipMember, MemberCrc>> {
  const shares = splitContiguousShares(members, (member) => member.compressedSize, workers);
  const results = new Map<ZipMember, MemberCrc>();
  await Promise.all(shares.map((share) => runShare(path, share, results, onBytes, base)));
  return results;
}


function runShare(path: string, share: ZipMember[], results: Map<ZipMember, MemberCrc>, onBytes: (bytes: number) => void, base: number): Promise<void> {
  const job: CrcJob = { path, members: share.map((m) => ({ dataOffset: base + m.dataOffset, size: m.compressedSize })) };
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./crc-worker.js", import.meta.url), { workerData: job });
    worker.on("message", (message: CrcWorkerMessage) => {
      if (message.kind === "progress") onBytes(message.bytes);
      else {
        message.results.forEach((result, index) => results.set(share[index]!, result));
        resolve();
      }
    });
    worker.on("error", (error) => reject(new CkptError("UNREADABLE", `cannot read for CRC: ${error.message}`, { file: path }, { cause: error })));
    worker.on("exit", (code) => {
      if (results.size < share.length) reject(new CkptError("UNREADABLE", `CRC worker stopped early (exit code ${code})`, { file: path }));
    });
  });
}
