/**
 * Splits the deep scan's planned reads across worker threads, as zip/crc-parallel.ts does for
 * the CRC pass: on two cores each thread copies and counts its own half of the file, which
 * keeps `verify --deep` within reach of plain `verify` on large checkpoints.
 */
import { Worker } from "node:worker_threads";
import { CkptError } from "../errors.js";
import type { FloatDType, NonFiniteCounts } from "./finite-kernels.js";
import type { PlannedRead } from "./finite-scan.js";
import { splitContiguousShares } from "./split-shares.js";

export interface ScanJob {
  path: string;
  bufferSize: number;
  reads: Array<{ offset: number; length: number; pieces: Array<{ start: number; length: number; dtype: FloatDType; swap: boolean }> }>;
}

export type ScanWorkerMessage =
  | { kind: "progress"; bytes: number }
  | { kind: "done"; counts: NonFiniteCounts[] };

/** Runs `reads` on `workers` threads over contiguous shares and adds each piece's counts to its segment. */
export async function scanReadsInParallel(path: string, reads: readonly PlannedRead[], bufferSize: number, workers: number, onBytes: (bytes: number) => void): Promise<void> {
  const shares = splitContiguousShares(reads, (read) => read.length, workers);
  await Promise.all(shares.map((share) => runShare(path, share, bufferSize, onBytes)));
}


function runShare(path: string, share: readonly PlannedRead[], bufferSize: number, onBytes: (bytes: number) => void): Promise<void> {
  const job: ScanJob = {
    path,
    bufferSize,
    reads: share.map((read) => ({
      offset: read.offset,
      length: read.length,
      pieces: read.pieces.map((p) => ({ start: p.offset - read.offset, length: p.length, dtype: p.segment.dtype, swap: p.segment.storage.byteOrder === "big" })),
    })),
  };
  const pieces = share.flatMap((read) => read.pieces);
  return new Promise((resolve, reject) => {
    let finished = false;
    const worker = new Worker(new URL("./finite-scan-worker.js", import.meta.url), { workerData: job });
    worker.on("message", (message: ScanWorkerMessage) => {
      if (message.kind === "progress") {
        onBytes(message.bytes);
        return;
      }
      message.counts.forEach((counts, index) => {
        const segment = pieces[index]!.segment;
        segment.nan += counts.nan;
        segment.posInf += counts.posInf;
        segment.negInf += counts.negInf;
      });
      finished = true;
      resolve();
    });
    worker.on("error", (error) => reject(new CkptError("UNREADABLE", `deep scan: ${error.message}`, { file: path }, { cause: error })));
    worker.on("exit", (code) => {
      if (!finished) reject(new CkptError("UNREADABLE", `deep scan worker stopped early (exit code ${code})`, { file: path }));
    });
  });
}
