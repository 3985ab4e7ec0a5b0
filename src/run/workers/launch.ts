import { startChild, type ChildExit, type RunningChild } from "../child.js";

/**
 * One launch of the worker command on a slot: its child process (a process group of its
 * own, as child.ts starts every command), its output prefixed with `[worker i] ` line by
 * line, and the clock `--unit-timeout` reads: the time since the launch started or since
 * one of its units was last marked done, whichever is later.
 */

export interface LaunchSpec {
  worker: number;
  units: readonly string[];
  attempt: number;
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  now: number;
  /** Each complete output line, prefixed. */
  onLine: (stream: "stdout" | "stderr", line: string) => void;
}

export type StopReason = "timeout" | "stop";

export class WorkerLaunch {
  readonly worker: number;
  readonly units: readonly string[];
  readonly attempt: number;
  readonly argv: string[];
  readonly startedAt: number;
  readonly child: RunningChild;
  /** Settles once the child has exited and its output is drained. */
  readonly exited: Promise<ChildExit>;
  /** Units whose marker appeared while it ran (checked for real once it exits). */
  readonly marked = new Set<string>();
  /** Why the supervisor ended it, when it did. */
  stoppedFor: StopReason | undefined;
  private lastProgressAt: number;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(spec: LaunchSpec) {
    this.worker = spec.worker;
    this.units = [...spec.units];
    this.attempt = spec.attempt;
    this.argv = [spec.command, ...spec.args];
    this.startedAt = spec.now;
    this.lastProgressAt = spec.now;
    const prefix = `[worker ${spec.worker}] `;
    const partial = { stdout: "", stderr: "" };
    this.child = startChild({
      command: spec.command, args: spec.args, env: spec.env, ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
      onOutput: (stream, chunk) => {
        const lines = (partial[stream] + chunk.toString("utf8")).split("\n");
        partial[stream] = lines.pop()!;
        for (const line of lines) spec.onLine(stream, `${prefix}${line}\n`);
      },
    });
    this.exited = this.child.exited.then((exit) => {
      clearTimeout(this.killTimer);
      for (const stream of ["stdout", "stderr"] as const) if (partial[stream] !== "") spec.onLine(stream, `${prefix}${partial[stream]}\n`);
      return exit;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** A unit's marker appeared: the current unit's clock restarts. */
  unitMarked(unit: string, now: number): void {
    if (this.marked.has(unit)) return;
    this.marked.add(unit);
    this.lastProgressAt = now;
  }

  /** True when the unit it is on has run longer than `timeoutMs`. */
  overdue(timeoutMs: number, now: number): boolean {
    return this.stoppedFor === undefined && now - this.lastProgressAt > timeoutMs;
  }

  /** Milliseconds the current unit has been running. */
  currentUnitAge(now: number): number {
    return now - this.lastProgressAt;
  }

  /** SIGTERM to its process group (or `signal`), SIGKILL `killAfterMs` later if it is still there. */
  stop(reason: StopReason, killAfterMs: number, signal: NodeJS.Signals = "SIGTERM", onKill?: () => void): void {
    this.stoppedFor ??= reason;
    this.child.signalGroup(signal);
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => {
      if (this.child.signalGroup("SIGKILL")) onKill?.();
    }, killAfterMs);
  }

  kill(): void {
    this.child.signalGroup("SIGKILL");
  }
}
