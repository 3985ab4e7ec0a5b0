/** What the verify benchmarks share: running a process, timing it, and its peak RSS. */
import { spawn, type SpawnOptions } from "node:child_process";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";

/** GNU time, for peak RSS (`%M`, KiB) of a whole process. */
export const GNU_TIME = "/usr/bin/time";
export const GB = 1e9;
export const MB = 1e6;

export interface ProcessRun {
  seconds: number;
  /** Peak resident set size in bytes; undefined without GNU time. */
  peakRss: number | undefined;
  code: number | null;
  stdout: string;
  stderr: string;
}

export function median(values: readonly number[]): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function runProcess(command: string[], options: SpawnOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [file, ...args] = command;
  if (file === undefined) throw new Error("empty command");
  return new Promise((resolvePromise) => {
    const child = spawn(file, args, options);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    const finish = (code: number | null, extra = ""): void =>
      resolvePromise({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") + extra });
    child.on("error", (error) => finish(null, `spawn failed: ${error.message}`));
    child.on("close", (code) => finish(code));
  });
}

/** Wall time measured here; peak RSS by GNU time's `%M` (KiB) into `rssFile`. */
export async function runMeasured(argv: string[], rssFile: string | undefined): Promise<ProcessRun> {
  const command = rssFile === undefined ? argv : [GNU_TIME, "-f", "%M", "-o", rssFile, ...argv];
  const started = process.hrtime.bigint();
  const { code, stdout, stderr } = await runProcess(command, { stdio: ["ignore", "pipe", "pipe"] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let peakRss: number | undefined;
  if (rssFile !== undefined) {
    // On failure GNU time writes "Command exited with non-zero status N" before the figure.
    const lastLine = (await readFile(rssFile, "utf8")).trim().split("\n").pop() ?? "";
    const kib = Number.parseInt(lastLine, 10);
    peakRss = Number.isFinite(kib) ? kib * 1024 : undefined;
  }
  return { seconds, peakRss, code, stdout, stderr };
}

/** Reads every byte once, so every measured run starts from a warm page cache. */
export async function warmPageCache(paths: readonly string[]): Promise<void> {
  for (const path of paths) for await (const chunk of createReadStream(path, { highWaterMark: 8 * 1024 * 1024 })) void chunk;
}

export const fmt = (value: number | undefined, digits: number): string => (value === undefined || Number.isNaN(value) ? "n/a" : value.toFixed(digits));
