/**
 * Worker thread body for the parallel CRC pass over one large file: CRCs its share of
 * stored members (crc-ranges.ts). On a 2-core machine two of these run at memory speed,
 * each core doing its own page-cache copy and CRC.
 */
import { closeSync, openSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { CrcJob, CrcWorkerMessage } from "./crc-parallel.js";
import { crcRanges } from "./crc-ranges.js";

const BUFFER_SIZE = 4 * 1024 * 1024;
/** Progress messages are sent at most once per this many bytes. */
const PROGRESS_STEP = 64 * 1024 * 1024;

function run(job: CrcJob): void {
  const port = parentPort!;
  const fd = openSync(job.path, "r");
  let sinceProgress = 0;
  try {
    const results = crcRanges(fd, Buffer.allocUnsafe(BUFFER_SIZE), job.members, (bytes) => {
      sinceProgress += bytes;
      if (sinceProgress >= PROGRESS_STEP) {
        port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies CrcWorkerMessage);
        sinceProgress = 0;
      }
    });
    port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies CrcWorkerMessage);
    // One message for all members: a message per member costs more than a small member's CRC.
    port.postMessage({ kind: "done", results } satisfies CrcWorkerMessage);
  } finally {
    closeSync(fd);
  }
}

run(workerData as CrcJob);
