import { emptyManifest } from "../../manifest/manifest.js";
import { CheckpointManifest, unitProgressLine } from "../../manifest/markers.js";
import { stopOrphanChild, type ChildExit } from "../child.js";
import { RotatingLog } from "../log-file.js";
import { FINISHED_STATES, type RunState } from "../progress.js";
import { readProgress, removeStaleTempFiles, runFiles, touchHeartbeat, writePidFile, writeProgress, type RunFiles } from "../run-files.js";
import { findCommand } from "../preflight.js";
import { RunTracker } from "../run-tracker.js";
import { StopSignals } from "../stop-signals.js";
import { runPreflight, type RunIo, type RunResult } from "../supervisor.js";
import { formatDuration } from "../units.js";
import { gpuOf, substituteWorker, workerEnvironment } from "./launch-args.js";
import { WorkerLaunch } from "./launch.js";
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerRunOptions } from "./options.js";
import { UnitScheduler, type Assignment } from "./scheduler.js";
import { WorkerSlots } from "./worker-status.js";

/**
 * `ckptguard run --workers N`: N slots running the worker command, each launch handed
 * pending units through `{worker}`/`{units}`. A unit is done only when, after its launch
 * exits, its completion marker (docs/markers.md) is valid and its outputs verify; anything
 * else is a failed attempt, retried after a backoff on another slot until `maxRetries`.
 * The run files, preflight, process groups and stop signals are the single-process
 * supervisor's (supervisor.ts); this file only wires the pool's own pieces to them.
 */

/** Longest wait between two looks at the pool (heartbeat, progress, unit timeouts). */
const MAX_TICK_MS = 1_000;

export async function superviseWorkers(options: WorkerRunOptions, io: Partial<RunIo> = {}): Promise<RunResult> {
  const full: RunIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, now: Date.now, signals: process, ...io };
  const resolved = await resolveWorkerOptions(options);
  await preflightWorkers(options, full.env, resolved);
  return new WorkerPool(resolved, full).run();
}

/**
 * The single run's preflight, with the program checked as each slot will start it: `{worker}`
 * may be part of its path (`./convert_{worker}.sh`), so the literal template is not what runs.
 */
export async function preflightWorkers(options: WorkerRunOptions, env: NodeJS.ProcessEnv, resolved?: ResolvedWorkerOptions): Promise<Awaited<ReturnType<typeof runPreflight>>> {
  const { workers, units, batch, run } = resolved ?? await resolveWorkerOptions(options);
  const [template, ...rest] = run.command as [string, ...string[]];
  const programs = Array.from({ length: workers }, (_, worker) => substituteWorker([template], worker, units.slice(0, batch))[0]!);
  const result = await runPreflight({ ...options, command: [programs[0]!, ...rest] }, env);
  for (const program of new Set(programs.slice(1))) await findCommand(program, env, run.cwd ?? process.cwd());
  return result;
}

class WorkerPool {
  private readonly files: RunFiles;
  private readonly tracker: RunTracker;
  private readonly markers: CheckpointManifest;
  private readonly slots: WorkerSlots;
  private readonly stops: StopSignals;
  private scheduler!: UnitScheduler;
  private readonly launches = new Set<WorkerLaunch>();
  /** Each launch's exit handling (its units checked), awaited before the run ends. */
  private readonly settling = new Set<Promise<void>>();
  private log: RotatingLog | undefined;
  private writes: Promise<void> = Promise.resolve();
  private ticker: NodeJS.Timeout | undefined;
  private lastProgressWrite = 0;
  private lastHeartbeat = 0;
  private ticking = false;
  private wake: (() => void) | undefined;

  constructor(private readonly options: ResolvedWorkerOptions, private readonly io: RunIo) {
    this.files = runFiles(options.run.stateDir);
    this.tracker = new RunTracker(options.run, io.now(), process.pid);
    this.markers = new CheckpointManifest(options.run.dir);
    this.slots = new WorkerSlots(options.workers, (w) => gpuOf(w, options.gpus));
    this.stops = new StopSignals(io.signals, (signal, first) => (first ? this.stop(signal) : this.kill(signal)));
  }

  async run(): Promise<RunResult> {
    try {
      // Inside the try: once open() has started the ticker and the signal handlers, a failure
      // (a marker it cannot remove) must still stop them, or the process never exits.
      await this.open();
      return await this.loop();
    } finally {
      await this.close();
    }
  }

  private async open(): Promise<void> {
    const { options, files } = this;
    await removeStaleTempFiles(files, options.run.dir);
    // Opened first, so that run.log records the orphaned workers stopped below.
    this.log = new RotatingLog(files.log, options.run.logMaxBytes, options.run.logKeep);
    const previous = await readProgress(files);
    if (previous && !FINISHED_STATES.has(previous.status)) {
      for (const slot of previous.workers ?? []) {
        if (slot.status !== "running" || slot.pid === null || slot.command === null) continue;
        if (await stopOrphanChild(slot.pid, slot.command, options.run.killAfterMs)) this.say(`stopped worker ${slot.worker} (pid ${slot.pid}), left running by a supervisor that died`);
      }
    }
    await writePidFile(files, process.pid);
    this.say(`supervising ${options.workers} worker${options.workers === 1 ? "" : "s"} on ${options.units.length} unit${options.units.length === 1 ? "" : "s"} in ${options.run.dir} (pid ${process.pid}; run files in ${options.run.stateDir})`);
    this.stops.listen();
    const tickMs = Math.max(20, Math.min(MAX_TICK_MS, options.run.heartbeatMs, options.run.progressIntervalMs, (options.unitTimeoutMs ?? Infinity) / 4));
    this.ticker = setInterval(() => void this.tick(), tickMs);
    this.lastHeartbeat = this.io.now();
    await touchHeartbeat(files, this.lastHeartbeat);
    this.scheduler = new UnitScheduler(options.units, { ...options, backoffMs: options.run.backoffMs, backoffMaxMs: options.run.backoffMaxMs }, await this.planResume());
    await this.persist();
  }

  /** The units already done (markers that still verify); invalid markers are removed so those units are redone. */
  private async planResume(): Promise<string[]> {
    const { options, markers } = this;
    if (options.run.fresh) {
      for (const unit of options.units) await markers.unmark(unit);
      this.say("--fresh: removed the completion markers of every unit");
    }
    const ordered = options.ordered ? await markers.planOrderedResume(options.units, options.unitCheck) : undefined;
    const plan = ordered ?? await markers.planResume(options.units, options.unitCheck);
    for (const { unit, reason } of plan.removed) this.say(`unit ${unit}: marker removed (${reason}); it will be redone`);
    if (ordered) this.say(ordered.line);
    else this.say(unitProgressLine(plan.done.length, options.units.length));
    return plan.done;
  }

  private async loop(): Promise<RunResult> {
    const { scheduler } = this;
    for (;;) {
      if (this.stops.received) {
        await this.settled();
        return this.finish("stopped", { code: "RUN_STOPPED", message: `stopped by ${this.stops.received}` });
      }
      const givenUp = scheduler.givenUp;
      if (givenUp.length > 0 && this.launches.size === 0) {
        await this.settled();
        const message = `${givenUp.join(", ")} failed ${this.options.maxRetries + 1} time${this.options.maxRetries === 0 ? "" : "s"} (--max-retries ${this.options.maxRetries})`;
        return this.finish("failed", { code: "UNIT_FAILED", message });
      }
      if (scheduler.complete && this.launches.size === 0) {
        await this.settled();
        return this.finish("completed");
      }
      const now = this.io.now();
      if (givenUp.length === 0) for (const assignment of scheduler.assign(this.slots.free(), now)) this.launch(assignment);
      if (scheduler.drained) this.slots.drained();
      await this.persist();
      const readyAt = scheduler.nextReadyAt(now);
      await this.sleep(Math.min(MAX_TICK_MS, readyAt === undefined ? MAX_TICK_MS : readyAt - now));
    }
  }

  private launch(assignment: Assignment): void {
    const { options, io } = this;
    const [command, ...template] = options.run.command as [string, ...string[]];
    const args = substituteWorker(template, assignment.worker, assignment.units);
    const program = substituteWorker([command], assignment.worker, assignment.units)[0]!;
    const gpu = gpuOf(assignment.worker, options.gpus);
    const env = workerEnvironment(io.env, { worker: assignment.worker, units: assignment.units, dir: options.run.dir, progressFile: this.files.progressFeed, gpu });
    const launch = new WorkerLaunch({
      ...assignment, command: program, args, env, now: io.now(), ...(options.run.cwd !== undefined ? { cwd: options.run.cwd } : {}),
      onLine: (stream, line) => {
        if (options.run.tee) io[stream].write(line);
        this.log?.write(line);
      },
    });
    this.launches.add(launch);
    this.slots.launched(assignment.worker, { pid: launch.pid, units: assignment.units, attempt: assignment.attempt, command: launch.argv }, io.now());
    this.tracker.status = "running";
    const retry = assignment.attempt > 1 ? ` (attempt ${assignment.attempt} of ${options.maxRetries + 1})` : "";
    this.say(`worker ${assignment.worker}${gpu !== undefined ? ` (GPU ${gpu})` : ""}: starting pid ${launch.pid} on ${assignment.units.join(", ")}${retry}: ${launch.argv.join(" ")}`);
    if (this.stops.received) launch.stop("stop", options.run.killAfterMs, this.stops.received);
    const settling = launch.exited.then((exit) => this.launchExited(launch, exit)).catch((error) => this.say(`worker ${launch.worker}: ${(error as Error).message}`)).finally(() => {
      this.launches.delete(launch);
      this.settling.delete(settling);
      this.wake?.();
    });
    this.settling.add(settling);
  }

  /** Checks every unit of the launch: done ones are done for good, the rest are retried (or given up). */
  private async launchExited(launch: WorkerLaunch, exit: ChildExit): Promise<void> {
    const { scheduler, options } = this;
    const how = exit.error ? `could not start: ${exit.error}` : exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const why = launch.stoppedFor === "timeout" ? ` after --unit-timeout ${formatDuration(options.unitTimeoutMs ?? 0)}` : "";
    this.say(`worker ${launch.worker}: pid ${launch.pid} ${how}${why}`);
    const unfinished: Array<{ unit: string; reason: string }> = [];
    for (const unit of launch.units) {
      const status = await this.markers.unitStatus(unit, options.unitCheck).catch((error: Error) => ({ unit, done: false, reason: error.message, unreadable: true }));
      if (status.done) {
        scheduler.finished(unit);
        this.say(`worker ${launch.worker}: unit ${unit} done`);
        continue;
      }
      // A marker that does not verify must not outlive this attempt: the next one starts clean.
      if (!("unreadable" in status)) await this.markers.unmark(unit).catch(() => false);
      unfinished.push({ unit, reason: status.reason ?? "no completion marker" });
    }
    const now = this.io.now();
    this.slots.exited(launch.worker, exit, unfinished.length === 0, now);
    for (const { unit, reason } of unfinished) {
      if (launch.stoppedFor === "stop") {
        scheduler.release(unit);
        continue;
      }
      const outcome = scheduler.failed(unit, launch.worker, now);
      const failures = scheduler.failuresOf(unit);
      if (outcome === "gave-up") {
        this.say(`UNIT_FAILED: unit ${unit} not done after attempt ${failures} of ${options.maxRetries + 1} (${reason}); no more retries${this.launches.size > 1 ? ", letting the running workers finish" : ""}`);
        continue;
      }
      this.tracker.restarts++;
      this.say(`unit ${unit}: attempt ${failures} failed (${reason}); retry ${failures} of ${options.maxRetries} in ${formatDuration(scheduler.retryDelay(unit))}${options.workers > 1 ? " on another worker" : ""}`);
    }
    await this.persist();
  }

  /** Heartbeat, unit timeouts (markers appearing restart a launch's clock), and the periodic progress.json. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = this.io.now();
      if (now - this.lastHeartbeat >= this.options.run.heartbeatMs) {
        this.lastHeartbeat = now;
        await touchHeartbeat(this.files, now).catch(() => undefined);
      }
      const timeout = this.options.unitTimeoutMs;
      if (timeout !== undefined) for (const launch of [...this.launches]) await this.checkTimeout(launch, timeout);
      if (now - this.lastProgressWrite >= this.options.run.progressIntervalMs) await this.persist();
    } finally {
      this.ticking = false;
    }
  }

  private async checkTimeout(launch: WorkerLaunch, timeoutMs: number): Promise<void> {
    for (const unit of launch.units) {
      if (launch.marked.has(unit)) continue;
      const marker = await this.markers.readMarker(unit).catch(() => undefined);
      if (marker !== undefined) launch.unitMarked(unit, this.io.now());
    }
    const now = this.io.now();
    if (!launch.overdue(timeoutMs, now)) return;
    const current = launch.units.find((u) => !launch.marked.has(u)) ?? launch.units[0];
    this.say(`worker ${launch.worker}: unit ${current} running for ${formatDuration(launch.currentUnitAge(now))}, over --unit-timeout ${formatDuration(timeoutMs)}: sending SIGTERM to pid ${launch.pid}`);
    launch.stop("timeout", this.options.run.killAfterMs, "SIGTERM", () => this.say(`worker ${launch.worker}: still running ${formatDuration(this.options.run.killAfterMs)} after SIGTERM: killed`));
  }

  private finish(status: RunState, outcome?: { code: string; message: string }): RunResult {
    const units = this.options.units.length;
    return this.tracker.finish(status, outcome, (line) => this.say(line), `run complete: ${units} unit${units === 1 ? "" : "s"} done`);
  }

  private async close(): Promise<void> {
    clearInterval(this.ticker);
    this.stops.close();
    if (this.scheduler?.drained) this.slots.drained(this.scheduler.complete);
    await this.persist();
    this.log?.close();
  }

  private async settled(): Promise<void> {
    while (this.settling.size > 0) await Promise.all([...this.settling]);
  }

  /** Waits `ms`, or less when a launch ends or a stop signal arrives. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /** The first stop signal: passed to every worker's process group; SIGKILL follows after --kill-after. */
  private stop(signal: NodeJS.Signals): void {
    this.tracker.status = "stopping";
    this.say(`${signal}: passing it to ${this.launches.size} running worker${this.launches.size === 1 ? "" : "s"}; ${signal === "SIGINT" ? "press Ctrl-C again" : "send it again"} to kill them`);
    for (const launch of this.launches) launch.stop("stop", this.options.run.killAfterMs, signal, () => this.say(`worker ${launch.worker}: still running ${formatDuration(this.options.run.killAfterMs)} after ${signal}: killed`));
    this.wake?.();
    void this.persist();
  }

  private kill(signal: NodeJS.Signals): void {
    this.say(`second ${signal}: killing every worker's process group`);
    for (const launch of this.launches) launch.kill();
  }

  /** progress.json: the single-process fields (no child of its own) plus `workers` and `units`. */
  private persist(): Promise<void> {
    this.writes = this.writes.then(async () => {
      const now = this.io.now();
      this.lastProgressWrite = now;
      const base = this.tracker.snapshot(emptyManifest(this.options.run.dir), now);
      await writeProgress(this.files, { ...base, max_restarts: this.options.maxRetries, workers: this.slots.snapshot(), units: this.scheduler?.counts() ?? null });
    }).catch((error) => this.say(`cannot write run files in ${this.options.run.stateDir}: ${(error as Error).message}`));
    return this.writes;
  }

  /** A line of our own: on stderr (when attached) and in run.log with the time. */
  private say(line: string): void {
    this.io.stderr.write(`ckptguard: ${line}\n`);
    this.log?.write(`[${new Date(this.io.now()).toISOString()}] ckptguard: ${line}\n`);
  }
}
