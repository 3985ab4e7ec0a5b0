/**
 * Runs the built CLI under GNU time (`/usr/bin/time -f %M`, the child's ru_maxrss in KiB)
 * so one run gives both what the CLI said and how much memory it took. Like `runCli` it
 * never throws on a non-zero exit and kills the run after a timeout; the figure goes to a
 * file of its own (`-o`) so stderr stays exactly what the CLI wrote.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { CLI, REPO_ROOT, TEST_TMP, type ProcessResult } from "./torch.js";

export const GNU_TIME = "/usr/bin/time";

/** Why memory cannot be measured here, or undefined when it can. */
export function gnuTimeMissing(): string | undefined {
  if (existsSync(GNU_TIME)) return undefined;
  return `${GNU_TIME} is missing: install GNU time (apt-get install time) to measure the CLI's peak RSS`;
}

export interface MeasuredRun extends ProcessResult {
  /** Peak RSS of the CLI process in KiB (NaN when the run timed out). */
  peakRssKb: number;
  /** CPU seconds (user + system) the CLI used: unlike wall time, not stretched by other load on the machine. */
  cpuSeconds: number;
  /** Wall-clock time of the run, node start-up included. */
  ms: number;
}

/** Runs `node dist/src/cli/main.js ...args` under GNU time; SIGKILLs time and the CLI after `timeoutMs`. */
export async function runCliMeasured(args: readonly string[], timeoutMs: number): Promise<MeasuredRun> {
  const missing = gnuTimeMissing();
  if (missing !== undefined) throw new Error(missing);
  await mkdir(TEST_TMP, { recursive: true });
  const dir = await mkdtemp(join(TEST_TMP, "peak-rss-"));
  const report = join(dir, "time.txt");
  try {
    const started = performance.now();
    const result = await new Promise<ProcessResult>((resolvePromise) => {
      // detached: time and the CLI get a process group of their own, so a timeout kills both.
      const child = spawn(GNU_TIME, ["-o", report, "-f", "%M %U %S", process.execPath, CLI, ...args], {
        cwd: REPO_ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"],
      });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      }, timeoutMs);
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolvePromise({
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
          code,
          signal,
          timedOut,
        });
      });
    });
    const ms = performance.now() - started;
    // GNU time puts "Command exited with non-zero status N" before the figure on a failing run.
    const lines = (await readFile(report, "utf8").catch(() => "")).trim().split("\n");
    const [peak, user, system] = (lines[lines.length - 1] ?? "").split(" ").map(Number);
    const peakRssKb = peak ?? Number.NaN;
    if (!result.timedOut && !Number.isFinite(peakRssKb)) throw new Error(`${GNU_TIME} wrote no %M figure: ${lines.join(" | ")}`);
    return { ...result, peakRssKb, cpuSeconds: (user ?? Number.NaN) + (system ?? Number.NaN), ms };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
