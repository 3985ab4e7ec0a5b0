/**
 * CRC-32 (the zip polynomial) for every reader and CRC thread. @node-rs/crc32 (~4.7 GB/s
 * against node:zlib's ~2.8, DESIGN.md) is loaded with require() on first use rather than
 * imported: importing its CommonJS loader from ESM makes Node scan it for exports
 * (cjs-module-lexer), 25-40 ms of start-up against 7 ms, paid by every CRC thread and by
 * `inspect`, which never CRCs bulk data.
 */
import { createRequire } from "node:module";
import * as zlib from "node:zlib";
import type * as NodeRsCrc32 from "@node-rs/crc32";

export type Crc32 = (data: Uint8Array, initial?: number) => number;

let native: Crc32 | undefined;

/** CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it). */
export function crc32(data: Uint8Array, initial = 0): number {
  native ??= (createRequire(import.meta.url)("@node-rs/crc32") as typeof NodeRsCrc32).crc32;
  return native(data, initial);
}

/** node:zlib's crc32, added in Node 20.15 / 22.2; engines allows older Node 20 releases. */
const zlibCrc32 = (zlib as { crc32?: Crc32 }).crc32;

/**
 * CRC-32 of a member read whole (a pickle, a version record): node:zlib's where Node has it,
 * which costs no module load (inspect then never loads @node-rs/crc32); at a few MB the speed
 * difference does not show.
 */
export function smallCrc32(data: Uint8Array): number {
  return zlibCrc32 !== undefined ? zlibCrc32(data, 0) : crc32(data);
}
