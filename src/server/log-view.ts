import type { KnownRun } from "./runs.js";
import { readStateFile } from "./state-file.js";

/**
 * run.log for the page: its last lines, and the supervisor's own lines about the command
 * ending and being relaunched (the restart history; progress.json only keeps the count).
 * Only the end of the file is read, so a 50 MB log costs the same as a small one.
 */

/** Bytes read from the end of run.log for a tail or the restart history. */
export const LOG_TAIL_BYTES = 1024 * 1024;
export const LOG_TAIL_DEFAULT = 200;
export const LOG_TAIL_MAX = 5_000;

export interface LogTail {
  lines: string[];
  /** run.log's size in bytes. */
  size: number;
  /** Older lines exist that were not returned. */
  truncated: boolean;
}

/** The last `tail` lines; undefined when run.log is absent or refused (a symlink, not a regular file). */
export async function readLogTail(run: KnownRun, tail: number): Promise<LogTail | undefined> {
  const file = await readStateFile(run.stateDir, "run.log", LOG_TAIL_BYTES, true);
  if (file === undefined) return undefined;
  const lines = file.text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (file.truncated) lines.shift(); // the first line read is most likely cut
  return { lines: lines.slice(-tail), size: file.size, truncated: file.truncated || lines.length > tail };
}

export interface RestartEvent {
  at: string;
  kind: "supervisor" | "exit" | "restart";
  /** The supervisor's line without its time stamp. */
  text: string;
  code?: number;
  signal?: string;
}

/** Events kept (newest). */
const RESTART_EVENTS_MAX = 100;

/**
 * The supervisor writes `[ISO time] ckptguard: <sentence>` (src/run/supervisor.ts `say`):
 * `supervising ...` when it starts, `command exited with code N` / `command killed by SIG`
 * / `cannot start ...` when the child ends, `restart N of M in ...` before a relaunch.
 */
const SUPERVISOR_LINE = /^\[(\d{4}-\d\d-\d\dT[\d:.]+Z)\] ckptguard: (.*)$/;

export function parseRestartEvents(lines: readonly string[]): RestartEvent[] {
  const events: RestartEvent[] = [];
  for (const line of lines) {
    const match = SUPERVISOR_LINE.exec(line);
    if (!match) continue;
    const [, at, text] = match as unknown as [string, string, string];
    let event: RestartEvent | undefined;
    const exited = /^command exited with code (\d+)/.exec(text);
    const killed = /^command killed by (SIG[A-Z0-9]+)/.exec(text);
    if (text.startsWith("supervising ")) event = { at, kind: "supervisor", text };
    else if (exited) event = { at, kind: "exit", text, code: Number(exited[1]) };
    else if (killed) event = { at, kind: "exit", text, signal: killed[1]! };
    else if (text.startsWith("cannot start ")) event = { at, kind: "exit", text };
    else if (/^restart \d+ of \d+/.test(text)) event = { at, kind: "restart", text };
    if (event) events.push(event);
  }
  return events.slice(-RESTART_EVENTS_MAX);
}

export async function readRestartEvents(run: KnownRun): Promise<RestartEvent[]> {
  const file = await readStateFile(run.stateDir, "run.log", LOG_TAIL_BYTES, true);
  return file === undefined ? [] : parseRestartEvents(file.text.split("\n"));
}
