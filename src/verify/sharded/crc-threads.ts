/**
 * How a sharded checkpoint's CRC work is spread: its streams (DCP items, HF shards) are
 * read a few at a time on this thread, their stored members CRC'd by one shared pool of
 * worker threads. The CRC pass is nearly all of a verify's time (DESIGN.md's budget), so
 * with the pool the parse of one stream hides behind the CRC of others.
 */
import { availableParallelism } from "node:os";
import { CrcPool } from "../../formats/zip.js";
import { PARALLEL_MIN_BYTES } from "../../formats/zip/crc-parallel.js";
import type { VerifyOptions } from "../verify-file.js";

/** At most this many threads: past it, reads from the page cache stop scaling. */
const MAX_CRC_THREADS = 4;

/**
 * None without a CRC pass; `options.workers` when given; else one thread per core, at most one per shard file and
 * 4, once the shards hold 256 MiB (below that, starting threads costs more than it saves).
 */
export function shardedCrcThreads(options: VerifyOptions, shardBytes: number, shardFiles: number): number {
  if (options.checkCrc === false) return 1; // nothing for the threads to do
  if (options.workers !== undefined) return options.workers;
  if (shardBytes < PARALLEL_MIN_BYTES) return 1;
  return Math.max(1, Math.min(availableParallelism(), shardFiles, MAX_CRC_THREADS));
}

/**
 * Runs `verify` with a pool of `threads` CRC threads (none for 1) and how many streams it
 * should keep in flight: twice the threads, so a thread finishing a job finds the next one
 * queued, while this thread holds only the small reads of that many streams.
 */
export async function withCrcThreads<R>(threads: number, verify: (pool: CrcPool | undefined, inFlight: number) => Promise<R>): Promise<R> {
  if (threads <= 1) return verify(undefined, 1);
  const pool = CrcPool.start(threads);
  try {
    return await verify(pool, threads * 2);
  } finally {
    await pool.close();
  }
}
