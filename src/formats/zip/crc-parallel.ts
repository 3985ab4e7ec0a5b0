/**
 * Splits the CRC pass over stored members between this thread and worker threads. A
 * checkpoint's bytes are almost all stored tensor members; on two cores two threads CRC them
 * faster than one (DESIGN.md's budget: 0.40 s on one thread, 0.32 s on two). A worker takes
 * 70-100 ms to start on such a machine, so this thread does not wait for it: it starts on the
 * members at once and the workers join in as they come up. Every thread claims its next member
 * from one shared counter (largest members first, so the last claims are small and the threads
 * finish together), and writes the member's CRC into shared memory.
 */
import { closeSync, openSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { CkptError } from "../../errors.js";
import type { ZipMember } from "../model.js";
import { CRC_THREAD_BUFFER_SIZE, crcRanges, NEXT_CLAIM, STARTED_FLAGS, type CrcRange, type RangeCrc } from "./crc-ranges.js";

/** Below this many stored bytes, starting workers costs more than it saves. */
export const PARALLEL_MIN_BYTES = 256 * 1024 * 1024;

/** This thread lets progress messages and worker events in after about this many bytes. */
const YIELD_STEP = 64 * 1024 * 1024;

export interface CrcJob {
  path: string;
  /** Claimable ranges; a thread claims index `Atomics.add(control, NEXT_CLAIM, 1)`. */
  ranges: CrcRange[];
  /** Int32Array over a SharedArrayBuffer: NEXT_CLAIM, then STARTED_FLAGS + worker index. */
  control: Int32Array;
  /** Float64Array over a SharedArrayBuffer: crc, bytes read of range i at 2i, 2i+1. */
  results: Float64Array;
  /** This worker's index, for its started flag. */
  index: number;
}

export type CrcWorkerMessage =
  | { kind: "progress"; bytes: number }
  | { kind: "done" };

/** A member's CRC and the bytes actually read (fewer than its size when the file shrank). */
export type MemberCrc = RangeCrc;

/** Threads for the CRC pass, this one included. */
export function parallelWorkerCount(storedBytes: number): number {
  if (storedBytes < PARALLEL_MIN_BYTES) return 1;
  return Math.max(1, Math.min(availableParallelism(), 4));
}

/**
 * CRC-32 of each member's stored bytes, computed by this thread and `threads - 1` workers.
 * `base` is where the zip starts in the file (a window of a `.distcp` file; 0 otherwise).
 * With `shareThisThread` false only the workers claim (tests use it to exercise them).
 */
export async function crcStoredMembersInParallel(
  path: string, members: readonly ZipMember[], threads: number, onBytes: (bytes: number) => void, base = 0, shareThisThread = true,
): Promise<Map<ZipMember, MemberCrc>> {
  const order = [...members].sort((a, b) => b.compressedSize - a.compressedSize || a.dataOffset - b.dataOffset);
  const workerCount = shareThisThread ? Math.max(0, Math.min(threads - 1, order.length - 1)) : Math.max(1, threads - 1);
  const job = {
    path,
    ranges: order.map((m) => ({ dataOffset: base + m.dataOffset, size: m.compressedSize })),
    control: new Int32Array(new SharedArrayBuffer(4 * (STARTED_FLAGS + workerCount))),
    results: new Float64Array(new SharedArrayBuffer(8 * 2 * order.length)),
  };
  const workers = Array.from({ length: workerCount }, (_, index) => startWorker({ ...job, index }, onBytes));
  try {
    if (shareThisThread) await claimOnThisThread(job, onBytes, workers.map((w) => w.failed));
    // Once every member is claimed, a worker that never started would find nothing left; one that did finishes its member.
    await Promise.all(workers.map((w, index) =>
      shareThisThread && Atomics.load(job.control, STARTED_FLAGS + index) === 0 ? undefined : Promise.race([w.done, w.failed])));
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
  return new Map(order.map((member, i) => [member, { crc: job.results[2 * i]!, read: job.results[2 * i + 1]! }]));
}

/** This thread's share: claims until none are left, letting worker messages in now and then. */
async function claimOnThisThread(job: Omit<CrcJob, "index">, onBytes: (bytes: number) => void, failures: Array<Promise<never>>): Promise<void> {
  const buffer = Buffer.allocUnsafe(CRC_THREAD_BUFFER_SIZE);
  let fd: number;
  try {
    fd = openSync(job.path, "r");
  } catch (error) {
    throw new CkptError("UNREADABLE", `cannot read for CRC: ${(error as Error).message}`, { file: job.path }, { cause: error });
  }
  try {
    let sinceYield = 0;
    for (let i = Atomics.add(job.control, NEXT_CLAIM, 1); i < job.ranges.length; i = Atomics.add(job.control, NEXT_CLAIM, 1)) {
      const [result] = crcRangesOrThrow(job.path, fd, buffer, job.ranges[i]!, (bytes) => {
        onBytes(bytes);
        sinceYield += bytes;
      });
      job.results[2 * i] = result!.crc;
      job.results[2 * i + 1] = result!.read;
      if (sinceYield >= YIELD_STEP) {
        sinceYield = 0;
        await Promise.race([new Promise((resolve) => setImmediate(resolve)), ...failures]);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** A read error here reads as it would from a worker: UNREADABLE naming the file. */
function crcRangesOrThrow(path: string, fd: number, buffer: Buffer, range: CrcRange, onBytes: (bytes: number) => void): ReturnType<typeof crcRanges> {
  try {
    return crcRanges(fd, buffer, [range], onBytes);
  } catch (error) {
    throw new CkptError("UNREADABLE", `cannot read for CRC: ${(error as Error).message}`, { file: path }, { cause: error });
  }
}

interface RunningWorker {
  worker: Worker;
  /** Resolves when the worker has run out of claims. */
  done: Promise<void>;
  /** Rejects when the worker fails or exits before it is done; never resolves. */
  failed: Promise<never>;
}

function startWorker(job: CrcJob, onBytes: (bytes: number) => void): RunningWorker {
  const worker = new Worker(new URL("./crc-worker.js", import.meta.url), { workerData: job });
  let finished = false;
  const done = new Promise<void>((resolve) => {
    worker.on("message", (message: CrcWorkerMessage) => {
      if (message.kind === "progress") onBytes(message.bytes);
      else {
        finished = true;
        resolve();
      }
    });
  });
  const failed = new Promise<never>((_, reject) => {
    worker.on("error", (error) => reject(new CkptError("UNREADABLE", `cannot read for CRC: ${error.message}`, { file: job.path }, { cause: error })));
    worker.on("exit", (code) => {
      if (!finished) reject(new CkptError("UNREADABLE", `CRC worker stopped early (exit code ${code})`, { file: job.path }));
    });
  });
  failed.catch(() => undefined); // observed through Promise.race; terminate() after success must not surface
  return { worker, done, failed };
}
