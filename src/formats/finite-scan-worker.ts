/**
 * Worker thread body for the parallel deep scan: reads its share of the planned reads with
 * synchronous reads (this thread does nothing else) and counts NaN/Inf per piece, as the
 * parallel CRC pass does for CRCs (zip/crc-worker.ts).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { countNonFinite, swapToLittle, type NonFiniteCounts } from "./finite-kernels.js";
import type { ScanJob, ScanWorkerMessage } from "./finite-scan-parallel.js";

/** Progress messages are sent at most once per this many bytes. */
const PROGRESS_STEP = 64 * 1024 * 1024;

function run(job: ScanJob): void {
  const port = parentPort!;
  const fd = openSync(job.path, "r");
  const buffer = Buffer.from(new ArrayBuffer(job.bufferSize));
  const counts: NonFiniteCounts[] = [];
  let sinceProgress = 0;
  try {
    for (const read of job.reads) {
      let filled = 0;
      while (filled < read.length) {
        const bytesRead = readSync(fd, buffer, filled, read.length - filled, read.offset + filled);
        if (bytesRead === 0) throw new Error(`file shrank while reading at byte ${read.offset + filled}`);
        filled += bytesRead;
      }
      for (const piece of read.pieces) {
        const bytes = buffer.subarray(piece.start, piece.start + piece.length);
        if (piece.swap) swapToLittle(bytes, piece.dtype === "float64" ? 8 : piece.dtype === "float32" ? 4 : 2);
        const c = { nan: 0, posInf: 0, negInf: 0 };
        countNonFinite(bytes, piece.dtype, c);
        counts.push(c);
        sinceProgress += piece.length;
      }
      if (sinceProgress >= PROGRESS_STEP) {
        port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies ScanWorkerMessage);
        sinceProgress = 0;
      }
    }
    port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies ScanWorkerMessage);
    port.postMessage({ kind: "done", counts } satisfies ScanWorkerMessage);
  } finally {
    closeSync(fd);
  }
}

run(workerData as ScanJob);
