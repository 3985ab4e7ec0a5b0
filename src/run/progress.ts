import type { ManifestCheckpoint } from "../manifest/manifest.js";
import type { UnitCounts } from "./workers/scheduler.js";
import type { WorkerSlotJson } from "./workers/worker-status.js";

/**
 * `progress.json`: the supervised run at a glance, for `ckptguard status`, the dashboard and
 * people. Built here from facts the supervisor gathered; written by run-files.ts.
 */

export type RunState = "starting" | "running" | "backoff" | "stopping" | "completed" | "failed" | "stopped";

/** States after which the supervisor has exited on purpose. */
export const FINISHED_STATES: ReadonlySet<RunState> = new Set(["completed", "failed", "stopped"]);

export interface CheckpointRef {
  path: string;
  epoch?: number;
  step?: number;
  loss?: number;
  /** The ranking metric's value (best only). */
  metric?: { name: string; value: number };
  /** The file's mtime (ISO 8601). */
  saved_at: string;
}

export interface RunWarning {
  /** A problem code from codes.ts (`SAVE_GAP`, ...). */
  code: string;
  message: string;
  since: string;
}

export interface ProgressJson {
  version: 1;
  status: RunState;
  /** The supervisor's pid (also in the `pid` file). */
  pid: number;
  child_pid: number | null;
  /** The command as given, `{resume}` and all. */
  command: string[];
  /** The current (or last) child's argv after substitution. */
  child_command: string[] | null;
  dir: string;
  state_dir: string;
  started_at: string;
  child_started_at: string | null;
  restarts: number;
  max_restarts: number;
  epoch: number | null;
  step: number | null;
  loss: number | null;
  total_epochs: number | null;
  total_steps: number | null;
  /** The last line the training script appended to `CKPTGUARD_PROGRESS`. */
  reported: Record<string, unknown> | null;
  latest_valid: CheckpointRef | null;
  best: CheckpointRef | null;
  last_save_at: string | null;
  next_save_expected_at: string | null;
  eta_seconds: number | null;
  heartbeat_interval_ms: number;
  max_gap_ms: number | null;
  warnings: RunWarning[];
  /** How the last child ended. */
  last_exit: { code: number | null; signal: string | null; at: string } | null;
  /** Why a finished run ended other than completed: a problem code and a sentence. */
  outcome: { code: string; message: string } | null;
  updated_at: string;
  /** `run --workers`: every worker slot (absent for a single command). */
  workers?: WorkerSlotJson[];
  /** `run --workers`: the units by state (absent for a single command). */
  units?: UnitCounts | null;
}

/** A point of training progress at a time (from a checkpoint or a progress line). */
export interface ProgressSample {
  at: number;
  epoch?: number;
  step?: number;
}

/**
 * Seconds until `total` epochs (else steps) are done, at the pace of `samples` (taken since
 * the current child started, so restarts and startup do not skew it); null when unknown.
 */
export function estimateEta(samples: readonly ProgressSample[], totals: { epochs?: number; steps?: number }, now: number): number | null {
  for (const [key, total] of [["epoch", totals.epochs], ["step", totals.steps]] as const) {
    if (total === undefined) continue;
    const points = samples.filter((s) => s[key] !== undefined);
    const first = points[0];
    const last = points[points.length - 1];
    if (first === undefined || last === undefined) continue;
    const done = last[key]! - first[key]!;
    const elapsed = last.at - first.at;
    if (last[key]! >= total) return 0;
    if (done <= 0 || elapsed <= 0) continue;
    const remaining = ((total - last[key]!) * elapsed) / done - (now - last.at);
    // Past the time the pace predicted: progress has stalled, so the pace says nothing.
    return remaining < 0 ? null : Math.round(remaining / 1000);
  }
  return null;
}

/** When the next save should land: the last save plus the median gap between recent saves. */
export function nextSaveExpected(saveTimes: readonly number[]): number | null {
  const recent = [...saveTimes].sort((a, b) => a - b).slice(-6);
  if (recent.length < 2) return null;
  const gaps = recent.slice(1).map((t, i) => t - recent[i]!).sort((a, b) => a - b);
  return recent[recent.length - 1]! + gaps[Math.floor(gaps.length / 2)]!;
}

export function checkpointRef(record: ManifestCheckpoint | undefined, metric?: { name: string; value: number | undefined }): CheckpointRef | null {
  if (record === undefined) return null;
  const ref: CheckpointRef = { path: record.path, saved_at: new Date(record.mtime).toISOString() };
  if (record.epoch !== undefined) ref.epoch = record.epoch;
  if (record.step !== undefined) ref.step = record.step;
  if (record.loss !== undefined) ref.loss = record.loss;
  if (metric?.value !== undefined) ref.metric = { name: metric.name, value: metric.value };
  return ref;
}
