import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { join } from "node:path";

/**
 * The only way the server reads a file: one of a fixed set of names inside a known run's
 * state directory, opened with O_NOFOLLOW and required to be a regular file, read with a
 * byte bound. No path from a request ever reaches here (requests name a run by its id),
 * so `..`, absolute paths and encoded variants have nothing to act on, and a symlink a
 * run file was replaced with (pointing out of the run) is refused rather than followed.
 */

/** The run files the dashboard shows (see src/run/run-files.ts); nothing else is readable. */
export const STATE_FILE_NAMES = ["progress.json", "manifest.json", "run.log", "progress.jsonl", "pid", "heartbeat"] as const;
export type StateFileName = (typeof STATE_FILE_NAMES)[number];

export interface StateFileRead {
  text: string;
  /** The file's size when read (may exceed the bytes read). */
  size: number;
  mtimeMs: number;
  /** Bytes were left out at the start (tail reads) or the end (head reads). */
  truncated: boolean;
}

/** True when `stateDir` is a real directory (not a symlink to one). */
export async function isStateDir(stateDir: string): Promise<boolean> {
  const info = await lstat(stateDir).catch(() => undefined);
  return info !== undefined && info.isDirectory() && !info.isSymbolicLink();
}

/**
 * Reads at most `maxBytes` of a run file, from its start, or its end with `fromEnd`.
 * Undefined when the file is absent, a symlink, not a regular file, or unreadable.
 */
export async function readStateFile(stateDir: string, name: StateFileName, maxBytes: number, fromEnd = false): Promise<StateFileRead | undefined> {
  if (!(STATE_FILE_NAMES as readonly string[]).includes(name) || !(await isStateDir(stateDir))) return undefined;
  const handle = await open(join(stateDir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (handle === undefined) return undefined;
  try {
    const info = await handle.stat();
    if (!info.isFile()) return undefined;
    const length = Math.min(info.size, maxBytes);
    const position = fromEnd ? info.size - length : 0;
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const { bytesRead } = await handle.read(buffer, read, length - read, position + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return { text: buffer.subarray(0, read).toString("utf8"), size: info.size, mtimeMs: info.mtimeMs, truncated: length < info.size };
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Parsed JSON of a run file, or undefined (absent, refused, too large, or not JSON). */
export async function readStateJson(stateDir: string, name: StateFileName, maxBytes: number): Promise<unknown> {
  const file = await readStateFile(stateDir, name, maxBytes);
  if (file === undefined || file.truncated) return undefined;
  try {
    return JSON.parse(file.text) as unknown;
  } catch {
    return undefined;
  }
}

/** A run file's mtime from lstat (nothing is opened); undefined when absent or not a regular file. */
export async function stateFileMtime(stateDir: string, name: StateFileName): Promise<number | undefined> {
  const info = await lstat(join(stateDir, name)).catch(() => undefined);
  return info?.isFile() ? info.mtimeMs : undefined;
}

/**
 * What changed-or-not looks like for a run, from lstat alone (no reads): size and mtime
 * of each run file. The monitor recomputes a run's view only when this string changes.
 */
export async function stateSignature(stateDir: string, names: readonly StateFileName[] = STATE_FILE_NAMES): Promise<string> {
  const parts = await Promise.all(names.map(async (name) => {
    const info = await lstat(join(stateDir, name)).catch(() => undefined);
    return info === undefined ? "-" : `${info.size}:${info.mtimeMs}${info.isSymbolicLink() ? "L" : ""}`;
  }));
  return parts.join("|");
}
