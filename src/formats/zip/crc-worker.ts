/**
 * Worker thread body for the parallel CRC pass: reads its share of stored members with
 * synchronous reads (no thread-pool round trips: this thread does nothing else) and
 * CRCs them. On a 2-core machine two of these run at memory speed, each core doing its
 * own page-cache copy and CRC.
 */
import { crc32 } from "@node-rs/crc32";
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { CrcJob, CrcWorkerMessage } from "./crc-parallel.js";

const BUFFER_SIZE = 4 * 1024 * 1024;
/** Progress messages are sent at most once per this many bytes. */
const PROGRESS_STEP = 64 * 1024 * 1024;

function run(job: CrcJob): void {
  const port = parentPort!;
  const fd = openSync(job.path, "r");
  const buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  let sinceProgress = 0;
  const results: Array<{ crc: number; read: number }> = [];
  try {
    for (const member of job.members) {
      let crc = 0;
      let position = member.dataOffset;
      const end = member.dataOffset + member.size;
      while (position < end) {
        const bytesRead = readSync(fd, buffer, 0, Math.min(BUFFER_SIZE, end - position), position);
        if (bytesRead === 0) break; // the file shrank under us; the CRC will not match
        crc = crc32(buffer.subarray(0, bytesRead), crc);
        position += bytesRead;
        sinceProgress += bytesRead;
        if (sinceProgress >= PROGRESS_STEP) {
          port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies CrcWorkerMessage);
          sinceProgress = 0;
        }
      }
      results.push({ crc, read: position - member.dataOffset });
    }
    port.postMessage({ kind: "progress", bytes: sinceProgress } satisfies CrcWorkerMessage);
    // One message for all members: a message per member costs more than a small member's CRC.
    port.postMessage({ kind: "done", results } satisfies CrcWorkerMessage);
  } finally {
    closeSync(fd);
  }
}

run(workerData as CrcJob);
