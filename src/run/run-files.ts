import { readdir, readFile, stat, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { FAILED_LIST_NAME } from "../catalog/check-run.js";
import { writeFileAtomic, writeJsonAtomic } from "../manifest/atomic-write.js";
import type { ManifestFailure } from "../manifest/manifest.js";
import { isAlive } from "./child.js";
import type { ProgressJson } from "./progress.js";

/**
 * The files a supervised run keeps in its state directory (`<dir>/.ckptguard/` unless
 * `--state-dir`). Everything but the append-only `run.log` is written atomically.
 */
export interface RunFiles {
  stateDir: string;
  /** The supervisor's pid, one line. */
  pid: string;
  /** Child stdout and stderr plus the supervisor's own lines, rotated by size. */
  log: string;
  /** Its mtime is refreshed every heartbeat interval while the supervisor watches a child. */
  heartbeat: string;
  progress: string;
  manifest: string;
  /** The JSONL file the training script may append to (`CKPTGUARD_PROGRESS`). */
  progressFeed: string;
}

export const STATE_DIR_NAME = ".ckptguard";

export function runFiles(stateDir: string): RunFiles {
  const at = (name: string): string => join(stateDir, name);
  return {
    stateDir, pid: at("pid"), log: at("run.log"), heartbeat: at("heartbeat"), progress: at("progress.json"),
    manifest: at("manifest.json"), progressFeed: at("progress.jsonl"),
  };
}

export async function writePidFile(files: RunFiles, pid: number): Promise<void> {
  await writeFileAtomic(files.pid, `${pid}\n`);
}

export async function readPidFile(files: RunFiles): Promise<number | undefined> {
  const text = await readFile(files.pid, "utf8").catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Refreshes the heartbeat's mtime; the first beat creates the file (atomically). */
export async function touchHeartbeat(files: RunFiles, now: number): Promise<void> {
  const time = new Date(now);
  try {
    await utimes(files.heartbeat, time, time);
  } catch {
    await writeFileAtomic(files.heartbeat, `${process.pid}\n`);
    await utimes(files.heartbeat, time, time);
  }
}

/** Milliseconds since the last heartbeat, or undefined when there never was one. */
export async function heartbeatAge(files: RunFiles, now: number): Promise<number | undefined> {
  const info = await stat(files.heartbeat).catch(() => undefined);
  return info === undefined ? undefined : now - info.mtimeMs;
}

/**
 * When the training script last reported progress (ms since the epoch): the newer mtime of the
 * progress feed and of the heartbeat the Python companion's `Progress` touches beside it
 * (`progress.jsonl.heartbeat`, with every line it writes); undefined when it never reported.
 */
export async function lastProgressReport(files: RunFiles): Promise<number | undefined> {
  const times = await Promise.all([files.progressFeed, `${files.progressFeed}.heartbeat`].map(async (path) => (await stat(path).catch(() => undefined))?.mtimeMs));
  const known = times.filter((time): time is number => time !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

export async function writeProgress(files: RunFiles, progress: ProgressJson): Promise<void> {
  await writeJsonAtomic(files.progress, progress);
}

/** progress.json, or undefined when absent or unreadable (a run that never started). */
export async function readProgress(files: RunFiles): Promise<ProgressJson | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(files.progress, "utf8"));
    if (typeof parsed !== "object" || parsed === null || (parsed as { version?: unknown }).version !== 1) return undefined;
    return parsed as ProgressJson;
  } catch {
    return undefined;
  }
}

/**
 * `<dir>/failed_checkpoints.txt`, in `check-run`'s format (`path<TAB>verdict<TAB>CODE: message`):
 * every invalid checkpoint version this run has seen, oldest first, also after the file
 * was saved again or deleted (manifest.json `failed` has the times and all problems).
 */
export async function writeFailedList(dir: string, failed: readonly ManifestFailure[]): Promise<void> {
  const oneLine = (text: string): string => text.replace(/[\t\r\n]+/g, " ");
  const lines = failed.map((f) => {
    const first = f.problems.find((p) => p.severity === "error") ?? f.problems[0];
    return `${f.path}\t${f.verdict}\t${first ? `${first.code}: ${oneLine(first.message)}` : f.verdict}\n`;
  });
  await writeFileAtomic(join(dir, FAILED_LIST_NAME), lines.join(""));
}

/** Temp files of our atomic writes (`.<name>.<pid>.<hex>.tmp`) left by a supervisor killed between write and rename. */
export async function removeStaleTempFiles(files: RunFiles, dir: string): Promise<number> {
  let removed = 0;
  for (const [where, names] of [[files.stateDir, "pid|heartbeat|progress\\.json|manifest\\.json"], [dir, "failed_checkpoints\\.txt"]] as const) {
    const pattern = new RegExp(`^\\.(?:${names})\\.(\\d+)\\.[0-9a-f]+\\.tmp$`);
    for (const name of await readdir(where).catch(() => [] as string[])) {
      const pid = pattern.exec(name)?.[1];
      if (pid === undefined || isAlive(Number(pid))) continue;
      await unlink(join(where, name)).catch(() => undefined);
      removed++;
    }
  }
  return removed;
}
