/**
 * Worker thread body of a CrcPool: answers one CRC job at a time, for whichever file the
 * job names, until the pool terminates it. A job that cannot open its file (a shard deleted
 * while we verify) is answered with the error instead of ending the thread.
 */
import { closeSync, openSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import type { CrcPoolJob, CrcPoolReply } from "./crc-pool.js";
import { CRC_THREAD_BUFFER_SIZE, crcRanges } from "./crc-ranges.js";

const buffer = Buffer.allocUnsafe(CRC_THREAD_BUFFER_SIZE);
const port = parentPort!;

port.on("message", (job: CrcPoolJob) => {
  let reply: CrcPoolReply;
  try {
    const fd = openSync(job.path, "r");
    try {
      reply = { id: job.id, results: crcRanges(fd, buffer, job.ranges) };
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    reply = { id: job.id, error: (error as Error).message };
  }
  port.postMessage(reply);
});
