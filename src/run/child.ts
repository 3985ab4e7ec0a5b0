import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The training command as a child process in a process group of its own, so that a
 * signal reaches it and everything it started (data loader workers, a shell's children),
 * and a Ctrl-C at our terminal reaches only us: we decide what the child gets.
 */

export interface ChildSpec {
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each chunk the child writes, as it arrives. */
  onOutput: (stream: "stdout" | "stderr", chunk: Buffer) => void;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be started at all. */
  error?: string;
}

export interface RunningChild {
  pid: number;
  /** Settles once the child has exited and its output is drained. */
  exited: Promise<ChildExit>;
  /** Sends `signal` to the child's whole process group; false when it is already gone. */
  signalGroup(signal: NodeJS.Signals): boolean;
}

/** Output still unread after the child exits is waited for this long (a grandchild may hold the pipes). */
const DRAIN_MS = 1_000;

export function startChild(spec: ChildSpec): RunningChild {
  const child = spawn(spec.command, [...spec.args], {
    env: spec.env, ...(spec.cwd ? { cwd: spec.cwd } : {}), detached: true, stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (chunk: Buffer) => spec.onOutput("stdout", chunk));
  child.stderr.on("data", (chunk: Buffer) => spec.onOutput("stderr", chunk));
  const pid = child.pid ?? -1;
  const signalGroup = (signal: NodeJS.Signals): boolean => (pid > 0 ? killGroup(pid, signal) : false);
  const exited = new Promise<ChildExit>((resolve) => {
    child.once("error", (error) => resolve({ code: 127, signal: null, error: error.message }));
    child.once("exit", (code, signal) => {
      // Whatever the command left in its group (workers, a backgrounded helper) goes with it.
      signalGroup("SIGKILL");
      const closed = new Promise<void>((done) => child.once("close", () => done()));
      void Promise.race([closed, sleep(DRAIN_MS)]).then(() => resolve({ code, signal }));
    });
  });
  return { pid, exited, signalGroup };
}

/** kill(2) on a process group; false when no process is left in it. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is a running process. A zombie (exited, not yet reaped: containers often run
 * without an init that reaps orphans) answers kill(pid, 0) but is dead, so /proc decides.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (not Linux): trust kill(2)
  }
}

/**
 * A child an earlier supervisor started and left running when it was killed. It is still
 * training into the same directory, so a second one must not start beside it: stop its
 * group (SIGTERM, then SIGKILL after `killAfterMs`). Only a process whose command line is
 * the one recorded is touched, never a stranger that reused the pid.
 */
export async function stopOrphanChild(pid: number, command: readonly string[], killAfterMs: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  if (cmdline === undefined || !sameCommand(cmdline.split("\0").filter((s) => s !== ""), command)) return false;
  killGroup(pid, "SIGTERM");
  for (let waited = 0; waited < killAfterMs && isAlive(pid); waited += 50) await sleep(50);
  if (isAlive(pid)) killGroup(pid, "SIGKILL");
  return true;
}

/** argv as /proc shows it against the one we started: a `#!` script shows its interpreter first. */
function sameCommand(actual: readonly string[], started: readonly string[]): boolean {
  const args = started.slice(1);
  const tail = actual.slice(actual.length - args.length);
  return tail.join("\0") === args.join("\0") && actual.slice(0, actual.length - args.length).some((a) => basename(a) === basename(started[0] ?? ""));
}
