import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CkptError } from "../errors.js";
import { writeFileAtomic } from "../manifest/atomic-write.js";
import { startChild, type ChildExit, type RunningChild } from "../run/child.js";
import { childEnvironment, substituteDir, substituteResume } from "../run/restart.js";

/**
 * One launch of the training command inside a rehearsal: `{dir}` and `{resume}`
 * substituted as DESIGN.md says, the CKPTGUARD_ variables set, its own process group,
 * a time limit, and the tail of its output kept for the reasons and the log.
 */

export interface LaunchSpec {
  command: readonly string[];
  /** The attempt's checkpoint directory (`{dir}`, CKPTGUARD_DIR). */
  dir: string;
  /** The checkpoint to resume from (`{resume}`, CKPTGUARD_RESUME); undefined on a fresh start. */
  resume?: string;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where the command may append progress lines (CKPTGUARD_PROGRESS). */
  progressFile: string;
  timeoutMs: number;
}

export interface LaunchEnd {
  exit: ChildExit;
  durationMs: number;
  /** Killed by us for running past `timeoutMs`. */
  timedOut: boolean;
  /** The last OUTPUT_TAIL_BYTES of stdout and stderr, interleaved as they arrived. */
  output: string;
}

export interface Launch {
  child: RunningChild;
  startedAt: number;
  ended: Promise<LaunchEnd>;
}

const OUTPUT_TAIL_BYTES = 256 * 1024;

/** The argv a launch runs: `{dir}` everywhere, `{resume}` in the arguments (with run's empty-argument rule). */
export function launchArgv(command: readonly string[], dir: string, resume: string | undefined): string[] {
  const [program, ...args] = substituteDir(command, dir);
  return [program!, ...substituteResume(args, resume)];
}

export function launch(spec: LaunchSpec): Launch {
  const [program, ...args] = launchArgv(spec.command, spec.dir, spec.resume);
  let tail = Buffer.alloc(0);
  const startedAt = Date.now();
  const child = startChild({
    command: program!, args,
    env: childEnvironment(spec.env, { resume: spec.resume, progressFile: spec.progressFile, dir: spec.dir }),
    ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
    onOutput: (_stream, chunk) => {
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > OUTPUT_TAIL_BYTES) tail = tail.subarray(tail.length - OUTPUT_TAIL_BYTES);
    },
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.signalGroup("SIGKILL");
  }, spec.timeoutMs);
  const ended = child.exited.then((exit) => {
    clearTimeout(timer);
    return { exit, durationMs: Date.now() - startedAt, timedOut, output: tail.toString("utf8") };
  });
  return { child, startedAt, ended };
}

/**
 * The launches of one rehearsal, so that a stop signal (Ctrl-C) reaches every command
 * still running: each runs in a process group of its own and would outlive us otherwise.
 */
export class Launcher {
  /** The stop signal received, once one was; no launch starts after it. */
  stopped: NodeJS.Signals | undefined;
  private readonly active = new Set<Launch>();

  launch(spec: LaunchSpec): Launch {
    if (this.stopped !== undefined) throw new CkptError("RUN_STOPPED", `rehearsal stopped by ${this.stopped}`);
    const started = launch(spec);
    this.active.add(started);
    void started.ended.then(() => this.active.delete(started));
    return started;
  }

  stop(signal: NodeJS.Signals): void {
    this.stopped ??= signal;
    for (const running of this.active) running.child.signalGroup("SIGKILL");
  }
}

/** An attempt's directory, emptied: it is the rehearsal's own scratch space. */
export async function freshAttemptDir(root: string, name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** "exited with code 1", "killed by SIGKILL", "could not start: ...". */
export function describeExit(end: LaunchEnd): string {
  if (end.exit.error !== undefined) return `could not start: ${end.exit.error}`;
  if (end.timedOut) return `ran past the time limit after ${seconds(end.durationMs)} and was killed`;
  const how = end.exit.signal !== null ? `was killed by ${end.exit.signal}` : `exited with code ${end.exit.code}`;
  const last = lastLine(end.output);
  return `${how} after ${seconds(end.durationMs)}${last ? ` (last output: ${last})` : ""}`;
}

export function succeeded(end: LaunchEnd): boolean {
  return end.exit.code === 0 && end.exit.error === undefined && !end.timedOut;
}

/** The launch's output tail as `<root>/<name>.log`. */
export async function writeLaunchLog(root: string, name: string, ends: readonly LaunchEnd[]): Promise<string> {
  const path = join(root, `${name}.log`);
  await writeFileAtomic(path, ends.map((end, i) => `--- launch ${i + 1}: ${describeExit(end)}\n${end.output}`).join("\n"));
  return path;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function lastLine(output: string): string {
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const last = lines[lines.length - 1] ?? "";
  return last.length > 200 ? `${last.slice(0, 200)}...` : last;
}
