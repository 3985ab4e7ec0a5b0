/**
 * Worker thread body for the parallel CRC pass over one large file (crc-parallel.ts): claims
 * members from the shared counter until none are left, writing each CRC into shared memory.
 * On a 2-core machine this thread and the main one run at memory speed, each core doing its
 * own page-cache copy and CRC.
 */
import { closeSync, openSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { CrcJob, CrcWorkerMessage } from "./crc-parallel.js";
import { CRC_THREAD_BUFFER_SIZE, crcRanges, NEXT_CLAIM, STARTED_FLAGS } from "./crc-ranges.js";

/** Progress messages are sent at most once per this many bytes. */
const PROGRESS_STEP = 64 * 1024 * 1024;

function run(job: CrcJob): void {
  const port = parentPort!;
  Atomics.store(job.control, STARTED_FLAGS + job.index, 1);
  const fd = openSync(job.path, "r");
  const buffer = Buffer.allocUnsafe(CRC_THREAD_BUFFER_SIZE);
  let sinceProgress = 0;
  try {
    for (let i = Atomics.add(job.control, NEXT_CLAIM, 1); i < job.ranges.length; i = Atomics.add(job.control, NEXT_CLAIM, 1)) {
      const [result] = crcRanges(fd, buffer, [job.ranges[i]!], (bytes) => {
        sinceProgress += bytes;
        if (sinceProgress >= PROGRESS_STEP) {
          port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies CrcWorkerMessage);
          sinceProgress = 0;
        }
      });
      job.results[2 * i] = result!.crc;
      job.results[2 * i + 1] = result!.read;
    }
    port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies CrcWorkerMessage);
    port.postMessage({ kind: "done" } satisfies CrcWorkerMessage);
  } finally {
    closeSync(fd);
  }
}

run(workerData as CrcJob);
