import { metricValue } from "../catalog/best.js";
import { asCatalogEntry, findRecord, type Manifest, type ManifestCheckpoint } from "../manifest/manifest.js";
import type { ResolvedRunOptions } from "./options.js";
import { checkpointRef, estimateEta, nextSaveExpected, type ProgressSample, type ProgressJson, type RunState, type RunWarning } from "./progress.js";
import type { ProgressLine } from "./progress-feed.js";
import type { RunResult } from "./supervisor.js";
import { formatDuration } from "./units.js";

/**
 * What the supervisor knows about the run, kept in memory and turned into `progress.json`.
 * No I/O and no timers here: the caller passes the time, so every rule (the save-gap
 * warning, the ETA) is tested without sleeping.
 */
export class RunTracker {
  status: RunState = "starting";
  childPid: number | null = null;
  childCommand: string[] | null = null;
  outcome: ProgressJson["outcome"] = null;
  childStartedAt: number | null = null;
  restarts = 0;
  lastExit: ProgressJson["last_exit"] = null;
  warnings: RunWarning[] = [];
  private reported: ProgressLine | undefined;
  private totals: { epochs?: number; steps?: number };
  /** Progress points since the current child started (the ETA's pace). */
  private samples: ProgressSample[] = [];
  /** When a valid checkpoint last arrived during this supervisor's life. */
  private lastValidArrival: number | undefined;

  constructor(private readonly options: ResolvedRunOptions, readonly startedAt: number, readonly pid: number) {
    this.totals = {
      ...(options.totalEpochs !== undefined ? { epochs: options.totalEpochs } : {}),
      ...(options.totalSteps !== undefined ? { steps: options.totalSteps } : {}),
    };
  }

  /**
   * Records how the run ended, says so (the outcome's code and sentence, or `completeLine`),
   * and gives what `superviseRun` / `superviseWorkers` return: exit 0 only when completed.
   */
  finish(status: RunState, outcome: { code: string; message: string } | undefined, say: (line: string) => void, completeLine: string): RunResult {
    this.status = status;
    if (outcome) {
      this.outcome = outcome;
      say(`${outcome.code}: ${outcome.message}`);
    } else {
      say(completeLine);
    }
    return { exitCode: status === "completed" ? 0 : 1, status, restarts: this.restarts, stateDir: this.options.stateDir, ...(outcome ? { outcome } : {}) };
  }

  get knownTotals(): { epochs?: number; steps?: number } {
    return this.totals;
  }

  childStarted(pid: number, argv: string[], now: number): void {
    this.childPid = pid;
    this.childCommand = argv;
    this.childStartedAt = now;
    this.status = "running";
    this.samples = [];
  }

  childExited(code: number | null, signal: string | null, now: number): void {
    this.childPid = null;
    this.lastExit = { code, signal, at: iso(now) };
  }

  progressLine(line: ProgressLine, now: number): void {
    this.reported = line;
    if (this.options.totalEpochs === undefined && line.totalEpochs !== undefined) this.totals.epochs = line.totalEpochs;
    if (this.options.totalSteps === undefined && line.totalSteps !== undefined) this.totals.steps = line.totalSteps;
    this.addSample({ at: now, ...pick(line) });
  }

  /** A valid checkpoint arrived: the save gap closes and the pace gains a point. */
  validCheckpoint(record: ManifestCheckpoint, now: number): void {
    this.lastValidArrival = now;
    this.warnings = this.warnings.filter((w) => w.code !== "SAVE_GAP");
    if (this.childStartedAt !== null && record.mtime >= this.childStartedAt) this.addSample({ at: record.mtime, ...pick(record) });
  }

  /** The SAVE_GAP warning when it is newly due (`--max-gap`), else undefined. */
  checkSaveGap(now: number): RunWarning | undefined {
    const maxGap = this.options.maxGapMs;
    if (maxGap === undefined || this.warnings.some((w) => w.code === "SAVE_GAP")) return undefined;
    const since = Math.max(this.startedAt, this.lastValidArrival ?? 0);
    if (now - since <= maxGap) return undefined;
    const what = this.lastValidArrival === undefined ? "since the run started" : "since the last one";
    const warning = { code: "SAVE_GAP", message: `no new valid checkpoint for ${formatDuration(now - since)} ${what} (--max-gap ${formatDuration(maxGap)})`, since: iso(since + maxGap) };
    this.warnings.push(warning);
    return warning;
  }

  snapshot(manifest: Manifest, now: number): ProgressJson {
    const latest = findRecord(manifest, manifest.latest_valid);
    const best = findRecord(manifest, manifest.best);
    const validTimes = manifest.checkpoints.filter((c) => c.verdict === "valid").map((c) => c.mtime);
    const lastSave = validTimes.length > 0 ? Math.max(...validTimes) : undefined;
    const next = nextSaveExpected(validTimes);
    const metric = manifest.metric;
    const position = this.position(latest);
    return {
      version: 1, status: this.status, pid: this.pid, child_pid: this.childPid, command: [...this.options.command], child_command: this.childCommand,
      dir: this.options.dir, state_dir: this.options.stateDir, started_at: iso(this.startedAt),
      child_started_at: this.childStartedAt === null ? null : iso(this.childStartedAt), restarts: this.restarts, max_restarts: this.options.maxRestarts,
      epoch: position.epoch ?? null, step: position.step ?? null, loss: position.loss ?? null,
      total_epochs: this.totals.epochs ?? null, total_steps: this.totals.steps ?? null,
      reported: this.reported?.values ?? null,
      latest_valid: checkpointRef(latest),
      best: checkpointRef(best, metric && best ? { name: metric.name, value: metricValue(asCatalogEntry(best), metric.name) } : undefined),
      last_save_at: lastSave === undefined ? null : iso(lastSave),
      next_save_expected_at: next === null ? null : iso(next),
      eta_seconds: estimateEta(this.samples, this.totals, now),
      heartbeat_interval_ms: this.options.heartbeatMs, max_gap_ms: this.options.maxGapMs ?? null,
      warnings: this.warnings, last_exit: this.lastExit, outcome: this.outcome, updated_at: iso(now),
    };
  }

  /** The script's own report when it has one (it is more recent), else the latest checkpoint's content. */
  private position(latest: ManifestCheckpoint | undefined): { epoch?: number; step?: number; loss?: number } {
    const fromFile = latest ? pick(latest) : {};
    return { ...fromFile, ...(this.reported ? pick(this.reported) : {}) };
  }

  private addSample(sample: ProgressSample): void {
    this.samples.push(sample);
    if (this.samples.length > 1000) this.samples.splice(1, this.samples.length - 500); // keep the first (pace origin) and recent ones
  }
}

function pick(source: { epoch?: number | undefined; step?: number | undefined; loss?: number | undefined }): { epoch?: number; step?: number; loss?: number } {
  return {
    ...(source.epoch !== undefined ? { epoch: source.epoch } : {}),
    ...(source.step !== undefined ? { step: source.step } : {}),
    ...(source.loss !== undefined ? { loss: source.loss } : {}),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
