/**
 * Inflates one deflated member from a ReadWindow and CRCs the output as it streams, never
 * holding more than one output chunk. Output is counted against the member's recorded
 * size and inflation stops at the first byte past it, so a deflate bomb costs one chunk.
 */
import { crc32 } from "./crc32.js";
import { createInflateRaw } from "node:zlib";
import type { ZipMember } from "../model.js";
import type { ReadWindow } from "./read-window.js";

/** Output chunk size: large enough to keep zlib's per-chunk overhead small. */
const OUTPUT_CHUNK_SIZE = 256 * 1024;

export interface InflateOutcome {
  /** Output bytes seen; past `uncompressedSize` only when `overflowed`. */
  produced: number;
  /** CRC-32 of the output, meaningful when the output is complete and not overflowed. */
  crc: number;
  overflowed: boolean;
  /** zlib's complaint about the deflate stream (corrupt data, or input ending early). */
  error?: Error;
}

export async function inflateAndCrc(window: ReadWindow, member: ZipMember): Promise<InflateOutcome> {
  const limit = member.uncompressedSize;
  const inflater = createInflateRaw({ chunkSize: OUTPUT_CHUNK_SIZE });
  const outcome: InflateOutcome = { produced: 0, crc: 0, overflowed: false };
  let finished = false;
  const done = new Promise<void>((resolve) => {
    const finish = (): void => {
      finished = true;
      resolve();
    };
    inflater.once("end", finish).once("close", finish).on("error", (error: Error) => {
      outcome.error ??= error;
      finish();
    });
  });
  inflater.on("data", (chunk: Buffer) => {
    if (outcome.overflowed) return;
    outcome.produced += chunk.length;
    if (outcome.produced > limit) {
      outcome.overflowed = true;
      inflater.destroy(); // zlib checks `destroyed` before its next chunk of work
      return;
    }
    outcome.crc = crc32(chunk, outcome.crc);
  });

  let position = member.dataOffset;
  const end = position + member.compressedSize;
  while (position < end && !finished) {
    // The view is reused by the window's next read, so wait until zlib has consumed it.
    const view = await window.viewAt(position, end - position);
    position += view.length;
    await Promise.race([new Promise<void>((resolve) => inflater.write(view, () => resolve())), done]);
  }
  if (!finished) inflater.end();
  await done;
  return outcome;
}
