/**
 * Helpers for the supervisor tests: real torch checkpoints to "save", the CLI started as a
 * long-running process that tests signal and kill, and polling for a condition instead of
 * sleeping a guessed time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI, REPO_ROOT, runPython, TEST_TMP, type ProcessResult } from "./torch.js";

export const RUN_FIXTURES = join(REPO_ROOT, "test/run/fixtures");
export const fixture = (name: string): string => join(RUN_FIXTURES, name);

/** `run` flags with small intervals, so that each supervisor test takes about a second. */
export const FAST_RUN_FLAGS: readonly string[] = ["--settle", "30ms", "--poll", "200ms", "--backoff", "50ms", "--heartbeat", "100ms", "--progress-interval", "100ms"];

/**
 * A directory of `count` tiny real torch training checkpoints, ckpt_epoch_0001.pt and up
 * (val_loss best at epoch 4). Written once and shared by every test file (made in a temp
 * directory and renamed into place, so test files running in parallel never see half of it).
 */
export async function checkpointTemplates(count = 6): Promise<string> {
  const dir = join(TEST_TMP, `run-templates-${count}`);
  if (existsSync(dir)) return dir;
  await mkdir(TEST_TMP, { recursive: true });
  const temp = await mkdtemp(join(TEST_TMP, `.run-templates-${count}-`));
  const result = await runPython(fixture("make_templates.py"), [temp, String(count)]);
  if (result.code !== 0) throw new Error(`make_templates.py failed: ${result.stderr}`);
  await rename(temp, dir).catch(async () => rm(temp, { recursive: true, force: true })); // another file won the race
  return dir;
}

export async function scratchDir(prefix: string): Promise<string> {
  await mkdir(TEST_TMP, { recursive: true });
  return mkdtemp(join(TEST_TMP, `${prefix}-`));
}

export interface RunningCli {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  exited: Promise<ProcessResult>;
}

/** Every CLI startCli launched that has not exited: stopAll ends them when a test fails midway. */
const running = new Set<RunningCli>();

/** Starts `ckptguard ...args` and returns at once; `exited` settles when it ends. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = process.env): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on("data", (c: Buffer) => { chunks.push(c); out.push(c); });
  child.stderr!.on("data", (c: Buffer) => { chunks.push(c); err.push(c); });
  const exited = new Promise<ProcessResult>((resolve) => {
    child.on("close", (code, signal) => resolve({
      stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), code, signal, timedOut: false,
    }));
  });
  const cli: RunningCli = { child, pid: child.pid!, output: () => Buffer.concat(chunks).toString("utf8"), exited };
  running.add(cli);
  void exited.then(() => running.delete(cli));
  return cli;
}

/**
 * Stops every supervisor a test left running (a failed assertion skips its own cleanup):
 * two SIGINTs (the second kills the supervised command's process group), then SIGKILL.
 * Call it from `after` so that a failing test fails instead of hanging on a live child.
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map(async (cli) => {
    cli.child.kill("SIGINT");
    await sleep(200);
    cli.child.kill("SIGINT");
    const timer = setTimeout(() => cli.child.kill("SIGKILL"), 3_000);
    await cli.exited;
    clearTimeout(timer);
  }));
}

/** Polls `probe` until it returns something other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Parsed JSON, or undefined while the file is absent. Throws on invalid JSON (that is a finding). */
export async function readJsonIfPresent<T = any>(path: string): Promise<T | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

/** Kills a process group that may already be gone. */
export function killGroupQuietly(pgid: number | null | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  if (!pgid) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}
