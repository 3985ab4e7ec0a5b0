/**
 * The CRC loop both kinds of CRC worker thread run: synchronous reads into one buffer (the
 * thread does nothing else, so thread-pool round trips would only add latency) and CRC-32
 * at memory speed.
 */
import { crc32 } from "./crc32.js";
import { readSync } from "node:fs";

/**
 * Control words of a parallel CRC pass (crc-parallel.ts), shared by its threads: the index of
 * the next range to claim, then one "started" flag per worker. Here so a worker loads no more.
 */
export const NEXT_CLAIM = 0;
export const STARTED_FLAGS = 1;

/** Bytes per read on every CRC thread: one buffer each, so memory stays flat for a file of any size. */
export const CRC_THREAD_BUFFER_SIZE = 4 * 1024 * 1024;

export interface CrcRange {
  dataOffset: number;
  size: number;
}

export interface RangeCrc {
  crc: number;
  /** Bytes actually read (less than the size when the file shrank). */
  read: number;
}

/** CRC-32 of each range of the open file `fd`, in order; `onBytes` hears of bytes read as they go. */
export function crcRanges(fd: number, buffer: Buffer, ranges: readonly CrcRange[], onBytes?: (bytes: number) => void): RangeCrc[] {
  const results: RangeCrc[] = [];
  for (const range of ranges) {
    let crc = 0;
    let position = range.dataOffset;
    const end = range.dataOffset + range.size;
    while (position < end) {
      const bytesRead = readSync(fd, buffer, 0, Math.min(buffer.length, end - position), position);
      if (bytesRead === 0) break; // the file shrank under us; the CRC will not match
      crc = crc32(buffer.subarray(0, bytesRead), crc);
      position += bytesRead;
      onBytes?.(bytesRead);
    }
    results.push({ crc, read: position - range.dataOffset });
  }
  return results;
}
