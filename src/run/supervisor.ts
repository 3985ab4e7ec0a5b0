import { relative } from "node:path";
import type { CatalogEntry } from "../catalog/entry.js";
import { emptyManifest, readManifest, recordCheckpoint, forgetCheckpoint, refreshSelections, writeManifest, type Manifest } from "../manifest/manifest.js";
import { startChild, stopOrphanChild, type ChildExit, type RunningChild } from "./child.js";
import { finalCheck } from "./final-check.js";
import { Notifier, type NotifyEventKind } from "./notify.js";
import { RotatingLog } from "./log-file.js";
import { resolveRunOptions, type ResolvedRunOptions, type RunOptions } from "./options.js";
import { preflight, type PreflightResult } from "./preflight.js";
import { FINISHED_STATES, type RunState } from "./progress.js";
import { ProgressFeed } from "./progress-feed.js";
import { backoffDelay, childEnvironment, substituteResume } from "./restart.js";
import { chooseForcedResume, chooseResume, resumeLine, type ResumeChoice } from "./resume.js";
import { applyRetention } from "./retention.js";
import { readProgress, removeStaleTempFiles, runFiles, touchHeartbeat, writeFailedList, writePidFile, writeProgress, type RunFiles } from "./run-files.js";
import { RunTracker } from "./run-tracker.js";
import { StopSignals, type SignalSource } from "./stop-signals.js";
import { formatDuration } from "./units.js";
import { CheckpointWatcher } from "./watcher.js";

/**
 * `ckptguard run`: launches the training command, watches and verifies its checkpoints,
 * relaunches it from the newest valid one when it dies, and keeps the run files current.
 * The pieces live beside this file (preflight, child, watcher, restart, retention, run
 * files); this one wires them together in the order a run goes through.
 */

/** The outside world the supervisor talks to; tests pass their own. */
export interface RunIo {
  stdout: { write(chunk: string | Uint8Array): unknown };
  stderr: { write(chunk: string | Uint8Array): unknown };
  env: NodeJS.ProcessEnv;
  now: () => number;
  signals: SignalSource;
}

export interface RunResult {
  exitCode: 0 | 1;
  status: RunState;
  restarts: number;
  stateDir: string;
  /** The problem code and sentence of a run that did not complete. */
  outcome?: { code: string; message: string };
}

/** At exit, how long queued webhook events (`--notify`) may still take to go out. */
const NOTIFY_FLUSH_MS = 5_000;

/** Longest period of the supervisor's tick (heartbeat, progress feed, save-gap check). */
const MAX_TICK_MS = 5_000;

/** Preflight alone (`run --check-only`, and before a `--detach`). Throws a CkptError on the first failure. */
export async function runPreflight(options: RunOptions, env: NodeJS.ProcessEnv = process.env): Promise<PreflightResult & { options: ResolvedRunOptions }> {
  const resolved = resolveRunOptions(options);
  const result = await preflight({
    dir: resolved.dir, stateDir: resolved.stateDir, command: resolved.command[0]!, env,
    ...(resolved.cwd !== undefined ? { cwd: resolved.cwd } : {}), ...(resolved.minFreeBytes !== undefined ? { minFreeBytes: resolved.minFreeBytes } : {}),
  });
  return { ...result, options: resolved };
}

/** Runs the command under supervision until it completes, fails for good, or is stopped. */
export async function superviseRun(options: RunOptions, io: Partial<RunIo> = {}): Promise<RunResult> {
  const full: RunIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, now: Date.now, signals: process, ...io };
  const { options: resolved } = await runPreflight(options, full.env);
  return new Supervisor(resolved, full).run();
}

class Supervisor {
  private readonly files: RunFiles;
  private readonly tracker: RunTracker;
  private readonly feed: ProgressFeed;
  private manifest: Manifest;
  private log: RotatingLog | undefined;
  private watcher: CheckpointWatcher | undefined;
  private child: RunningChild | undefined;
  private readonly stops: StopSignals;
  private writes: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private ticking = false;
  private lastProgressWrite = 0;
  private lastHeartbeat = 0;
  private validDuringChild = false;
  private readonly notifier: Notifier | undefined;

  constructor(private readonly options: ResolvedRunOptions, private readonly io: RunIo) {
    this.files = runFiles(options.stateDir);
    this.notifier = options.notify.length > 0 ? new Notifier({ urls: options.notify, onFailure: (message) => this.say(message) }) : undefined;
    this.tracker = new RunTracker(options, io.now(), process.pid);
    this.feed = new ProgressFeed(this.files.progressFeed);
    this.manifest = emptyManifest(options.dir);
    this.stops = new StopSignals(io.signals, (signal, first) => (first ? this.stop(signal) : this.kill(signal)));
  }

  async run(): Promise<RunResult> {
    await this.open();
    try {
      return await this.loop();
    } finally {
      await this.close();
    }
  }

  private async open(): Promise<void> {
    const { options, files } = this;
    await removeStaleTempFiles(files, options.dir);
    const previous = await readProgress(files);
    if (previous && !FINISHED_STATES.has(previous.status) && previous.child_pid !== null && previous.child_command !== null) {
      if (await stopOrphanChild(previous.child_pid, previous.child_command, options.killAfterMs)) this.say(`stopped pid ${previous.child_pid}, left running by a supervisor that died`);
    }
    await writePidFile(files, process.pid);
    this.log = new RotatingLog(files.log, options.logMaxBytes, options.logKeep);
    this.say(`supervising ${options.dir} (pid ${process.pid}; run files in ${options.stateDir})`);
    const saved = await readManifest(files.manifest);
    if (saved?.dir === options.dir) this.manifest = saved;
    await this.feed.skipExisting();
    this.watcher = new CheckpointWatcher({
      dir: options.dir, settleMs: options.settleMs, pollMs: options.pollMs, hash: options.hash, deep: options.deep, now: this.io.now,
      onVerified: (entry, sha256) => this.checkpointVerified(entry, sha256),
      onGone: (path) => this.checkpointGone(path),
      onError: (error) => this.say(`cannot scan ${options.dir}: ${(error as Error).message}`),
    });
    this.watcher.remember(this.manifest.checkpoints);
    this.stops.listen();
    // Every tick costs a stat or two (and their garbage): as rare as the heartbeat, the
    // progress refresh and a tenth of --max-gap allow, at most 5 s.
    const tickMs = Math.max(20, Math.min(MAX_TICK_MS, options.heartbeatMs, options.progressIntervalMs, (options.maxGapMs ?? Infinity) / 10));
    this.timers.push(setInterval(() => void this.tick(), tickMs));
    this.lastHeartbeat = this.io.now();
    await touchHeartbeat(files, this.lastHeartbeat);
    await this.persist({ progress: true });
    // Checkpoints already there are verified in the background: a directory of a hundred
    // big ones must not delay the launch (the resume choice does its own full check).
    this.watcher.start();
    void this.watcher.flush();
  }

  private async loop(): Promise<RunResult> {
    let firstLaunch = true;
    let failuresInARow = 0;
    for (;;) {
      const { options, tracker } = this;
      const choice = await this.chooseResume(firstLaunch);
      firstLaunch = false;
      if (this.stops.received) return this.stopped(this.stops.received);
      if (choice.refusal !== undefined) return this.finish("failed", { code: "FORCED_RESUME_INVALID", message: choice.refusal });
      if (choice.note) this.say(choice.note);
      if (choice.unverified !== undefined) await this.warnValidationSkipped(choice.unverified);
      this.say(choice.entry ? resumeLine(choice.entry, tracker.knownTotals)
        : choice.unverified !== undefined ? `Progress: resuming from: ${choice.unverified} (NOT VERIFIED: --skip-validation)`
          : "Progress: starting fresh (no valid checkpoint to resume from)");
      const exit = await this.runChild(choice.entry?.path ?? choice.unverified);
      await this.watcher!.flush();
      if (this.stops.received) return this.stopped(this.stops.received);
      if (exit.code === 0) return this.completed();
      failuresInARow = this.validDuringChild ? 1 : failuresInARow + 1;
      if (tracker.restarts >= options.maxRestarts) {
        return this.finish("failed", { code: "RESTARTS_EXHAUSTED", message: `the command failed ${tracker.restarts + 1} times; --max-restarts ${options.maxRestarts} reached` });
      }
      tracker.restarts++;
      const delay = backoffDelay(failuresInARow, options.backoffMs, options.backoffMaxMs);
      tracker.status = "backoff";
      this.say(`restart ${tracker.restarts} of ${options.maxRestarts} in ${formatDuration(delay)}`);
      this.notify("restart", `restart ${tracker.restarts} of ${options.maxRestarts} in ${formatDuration(delay)}`, { restart: tracker.restarts, max_restarts: options.maxRestarts, delay_ms: delay });
      await this.persist({ progress: true });
      await this.stops.sleep(delay);
    }
  }

  /**
   * The newest valid checkpoint (with `--fresh`, the newest this run wrote). With
   * `--force-resume`, the named one until the run has saved a valid checkpoint of its own:
   * newer checkpoints already there are exactly what the user chose to pass over.
   */
  private async chooseResume(firstLaunch: boolean): Promise<ResumeChoice> {
    const { options, tracker } = this;
    if (options.forceResume === undefined) {
      return firstLaunch && options.fresh ? { entry: undefined } : chooseResume(options.dir, this.manifest, options.fresh ? tracker.startedAt : undefined);
    }
    if (!firstLaunch) {
      const own = await chooseResume(options.dir, this.manifest, tracker.startedAt, "--force-resume");
      if (own.entry) return own;
    }
    return chooseForcedResume(options.forceResume, options.skipValidation);
  }

  /** `--skip-validation`: loud in the log, and a warning in progress.json (so `status` exits 1) for the rest of the run. */
  private async warnValidationSkipped(path: string): Promise<void> {
    if (this.tracker.warnings.some((w) => w.code === "VALIDATION_SKIPPED")) return;
    const message = `resuming from ${path} WITHOUT verifying it (--skip-validation): a corrupt or incomplete checkpoint will be loaded as is`;
    this.tracker.warnings.push({ code: "VALIDATION_SKIPPED", message, since: new Date(this.io.now()).toISOString() });
    this.say(`WARNING VALIDATION_SKIPPED: ${message}`);
    await this.persist({ progress: true });
  }

  private async runChild(resume: string | undefined): Promise<ChildExit> {
    const [command, ...template] = this.options.command as [string, ...string[]];
    const args = substituteResume(template, resume);
    const env = childEnvironment(this.io.env, { resume, progressFile: this.files.progressFeed, dir: this.options.dir });
    this.validDuringChild = false;
    this.say(`starting: ${[command, ...args].join(" ")}`);
    const child = startChild({
      command, args, env, ...(this.options.cwd !== undefined ? { cwd: this.options.cwd } : {}),
      onOutput: (stream, chunk) => {
        if (this.options.tee) this.io[stream].write(chunk);
        this.log?.write(chunk);
      },
    });
    this.child = child;
    this.tracker.childStarted(child.pid, [command, ...args], this.io.now());
    await this.persist({ progress: true });
    if (this.stops.received) child.signalGroup(this.stops.received);
    const exit = await child.exited;
    this.child = undefined;
    this.tracker.childExited(exit.code, exit.signal, this.io.now());
    await this.readFeed(this.io.now()); // its last lines (the total it reported, for "X/Y")
    const how = exit.error ? `cannot start ${command}: ${exit.error}` : exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
    this.say(exit.error ? how : `command ${how}`);
    if (exit.code !== 0 && !this.stops.received) {
      this.notify("crash", exit.error ? how : exit.signal ? `the command was ${how}` : `the command ${how}`, { code: exit.code, signal: exit.signal, ...(exit.error ? { error: exit.error } : {}) });
    }
    await this.persist({ progress: true });
    return exit;
  }

  private async completed(): Promise<RunResult> {
    if (!this.options.finalCheck) return this.finish("completed");
    const { final, failures } = await finalCheck(this.options.dir, this.tracker.knownTotals);
    if (failures.length > 0) {
      for (const failure of failures) this.say(`FINAL_CHECK_FAILED: ${failure}`);
      return this.finish("failed", { code: "FINAL_CHECK_FAILED", message: failures.join("; ") });
    }
    this.say(`final check passed: ${relative(this.options.dir, final!.path)} is valid, complete and the newest`);
    return this.finish("completed");
  }

  private finish(status: RunState, outcome?: { code: string; message: string }): RunResult {
    const result = this.tracker.finish(status, outcome, (line) => this.say(line), "run complete");
    this.notify("finish", outcome ? `${status}: ${outcome.code}: ${outcome.message}` : `${status} after ${this.tracker.restarts} restart(s)`, { status, outcome: outcome ?? null, restarts: this.tracker.restarts });
    return result;
  }

  private async close(): Promise<void> {
    this.watcher?.stop();
    for (const timer of this.timers) clearTimeout(timer);
    this.stops.close();
    await this.persist({ manifest: true, progress: true });
    await this.notifier?.flush(NOTIFY_FLUSH_MS);
    this.log?.close();
  }

  private async checkpointVerified(entry: CatalogEntry, sha256: string | undefined): Promise<void> {
    const now = this.io.now();
    const record = recordCheckpoint(this.manifest, entry, now, sha256);
    this.refreshSelections();
    const name = relative(this.options.dir, entry.path);
    if (record.verdict === "valid") {
      this.tracker.validCheckpoint(record, now);
      if (this.child) this.validDuringChild = true;
      const at = [record.epoch !== undefined ? `epoch ${record.epoch}` : "", record.step !== undefined ? `step ${record.step}` : ""].filter(Boolean).join(", ");
      this.say(`checkpoint ${name}: valid${at ? ` (${at})` : ""}`);
    } else {
      const first = record.problems.find((p) => p.severity === "error");
      this.say(`checkpoint ${name}: ${record.verdict}${first ? ` (${first.code}: ${first.message})` : ""}; listed in failed_checkpoints.txt, never resumed from`);
      this.notify("invalid_checkpoint", `checkpoint ${name} is ${record.verdict}${first ? ` (${first.code}: ${first.message})` : ""}`, {
        path: record.path, verdict: record.verdict, codes: [...new Set(record.problems.filter((p) => p.severity === "error").map((p) => p.code))],
      });
    }
    const deleted = await applyRetention(this.manifest, { ...(this.options.keepLast !== undefined ? { keepLast: this.options.keepLast } : {}), ...(this.options.keepBest !== undefined ? { keepBest: this.options.keepBest } : {}) });
    for (const path of deleted) this.say(`retention: deleted ${relative(this.options.dir, path)}`);
    await this.persist({ manifest: true, progress: true, failed: record.verdict !== "valid" });
  }

  private async checkpointGone(path: string): Promise<void> {
    if (!this.manifest.checkpoints.some((c) => c.path === path)) return;
    forgetCheckpoint(this.manifest, path);
    this.refreshSelections();
    await this.persist({ manifest: true, progress: true });
  }

  /** Latest valid and best, ranked by --metric/--mode when given. */
  private refreshSelections(): void {
    refreshSelections(this.manifest, { ...(this.options.metric ? { name: this.options.metric } : {}), ...(this.options.mode ? { mode: this.options.mode } : {}) });
  }

  /** Heartbeat, the script's progress lines, the save-gap check, and the periodic progress.json. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = this.io.now();
      if (now - this.lastHeartbeat >= this.options.heartbeatMs) {
        this.lastHeartbeat = now;
        await touchHeartbeat(this.files, now).catch(() => undefined);
      }
      await this.readFeed(now);
      const warning = this.tracker.checkSaveGap(now);
      if (warning) {
        this.say(`WARNING ${warning.code}: ${warning.message}`);
        this.notify("stale", warning.message, { code: warning.code, since: warning.since, max_gap_ms: this.options.maxGapMs ?? null });
      }
      if (warning || now - this.lastProgressWrite >= this.options.progressIntervalMs) await this.persist({ progress: true });
    } finally {
      this.ticking = false;
    }
  }

  private async readFeed(now: number): Promise<void> {
    for (const line of await this.feed.poll().catch(() => [])) this.tracker.progressLine(line, now);
  }

  /**
   * Writes run files one after another (never two writers on one file). progress.json goes
   * first: a reader that sees a checkpoint in manifest.json finds it in progress.json too.
   */
  private persist(what: { manifest?: boolean; progress?: boolean; failed?: boolean }): Promise<void> {
    this.writes = this.writes.then(async () => {
      const now = this.io.now();
      if (what.progress) {
        this.lastProgressWrite = now;
        await writeProgress(this.files, this.tracker.snapshot(this.manifest, now));
      }
      if (what.failed) await writeFailedList(this.options.dir, this.manifest.failed);
      if (what.manifest) await writeManifest(this.files.manifest, this.manifest, now);
    }).catch((error) => this.say(`cannot write run files in ${this.options.stateDir}: ${(error as Error).message}`));
    return this.writes;
  }

  /** The first stop signal: passed to the command's process group; SIGKILL follows after --kill-after. */
  private stop(signal: NodeJS.Signals): void {
    this.tracker.status = "stopping";
    this.say(`${signal}: passing it to the command${this.child ? ` (process group ${this.child.pid})` : ""}; ${signal === "SIGINT" ? "press Ctrl-C again" : "send it again"} to kill it`);
    this.child?.signalGroup(signal);
    this.timers.push(setTimeout(() => {
      if (this.child?.signalGroup("SIGKILL")) this.say(`still running ${formatDuration(this.options.killAfterMs)} after ${signal}: killed`);
    }, this.options.killAfterMs));
    void this.persist({ progress: true });
  }

  private kill(signal: NodeJS.Signals): void {
    this.say(`second ${signal}: killing the command's process group`);
    this.child?.signalGroup("SIGKILL");
  }

  private stopped(signal: NodeJS.Signals): RunResult {
    return this.finish("stopped", { code: "RUN_STOPPED", message: `stopped by ${signal}` });
  }

  /** A webhook event (`--notify`): queued and sent in the background, never awaited here. */
  private notify(kind: NotifyEventKind, text: string, details: Record<string, unknown>): void {
    this.notifier?.send(Notifier.event(kind, this.options.dir, `run ${this.options.dir}: ${text}`, details, this.io.now()));
  }

  /** A line of our own: on stderr (when attached) and in run.log with the time. */
  private say(line: string): void {
    this.io.stderr.write(`ckptguard: ${line}\n`);
    this.log?.write(`[${new Date(this.io.now()).toISOString()}] ckptguard: ${line}\n`);
  }
}
