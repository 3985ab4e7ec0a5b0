import { join, resolve } from "node:path";
import { CkptError } from "../errors.js";
import { isAlive } from "./child.js";
import { FINISHED_STATES, type CheckpointRef, type ProgressJson, type RunState, type RunWarning } from "./progress.js";
import { heartbeatAge, lastProgressReport, readPidFile, readProgress, runFiles, STATE_DIR_NAME } from "./run-files.js";
import type { UnitCounts } from "./workers/scheduler.js";
import type { WorkerSlotJson } from "./workers/worker-status.js";

/**
 * `ckptguard status <dir>`: is the supervised run alive, where is it, and is anything
 * wrong. Read from the run files only, so it works from any shell, for a run started in
 * the foreground, detached, or by a supervisor that has since died.
 */

/** A finished state, or `dead` (supervisor gone mid-run) / `stale` (alive but its heartbeat stopped). */
export type RunHealth = RunState | "dead" | "stale";

export interface RunStatus {
  dir: string;
  state_dir: string;
  state: RunHealth;
  /** The supervisor is running and its heartbeat is fresh. */
  alive: boolean;
  pid: number | null;
  pid_alive: boolean;
  heartbeat_age_ms: number | null;
  child_pid: number | null;
  child_alive: boolean;
  epoch: number | null;
  step: number | null;
  loss: number | null;
  total_epochs: number | null;
  total_steps: number | null;
  eta_seconds: number | null;
  /** When the training script last appended to the progress feed (`CKPTGUARD_PROGRESS`). */
  last_report_at: string | null;
  last_report_age_ms: number | null;
  last_save_at: string | null;
  last_save_age_ms: number | null;
  next_save_expected_at: string | null;
  latest_valid: CheckpointRef | null;
  best: CheckpointRef | null;
  restarts: number;
  warnings: RunWarning[];
  outcome: ProgressJson["outcome"];
  /** `run --workers`: each worker slot, with whether its launch's pid is alive; null for a single command. */
  workers: Array<WorkerSlotJson & { alive: boolean }> | null;
  /** `run --workers`: the units by state; null for a single command. */
  units: UnitCounts | null;
  /** 0 when running healthily or completed; 1 when dead, stale, failed, stopped, or warning. */
  exit_code: 0 | 1;
}

/** A heartbeat older than this many intervals means the supervisor is stuck. */
export const STALE_AFTER_INTERVALS = 3;

export async function readRunStatus(dir: string, options: { stateDir?: string; now?: number } = {}): Promise<RunStatus> {
  const stateDir = resolve(options.stateDir ?? join(dir, STATE_DIR_NAME));
  const files = runFiles(stateDir);
  const progress = await readProgress(files);
  if (progress === undefined) {
    throw new CkptError("NOT_A_RUN", `no supervised run here: ${files.progress} is missing (start one with ckptguard run --dir ${dir} -- ...)`, { file: dir });
  }
  const now = options.now ?? Date.now();
  const pid = (await readPidFile(files)) ?? progress.pid;
  const finished = FINISHED_STATES.has(progress.status);
  const pidAlive = !finished && isAlive(pid);
  const age = await heartbeatAge(files, now);
  const lastReport = await lastProgressReport(files);
  const stale = pidAlive && (age === undefined || age > STALE_AFTER_INTERVALS * progress.heartbeat_interval_ms);
  const state: RunHealth = finished ? progress.status : !pidAlive ? "dead" : stale ? "stale" : progress.status;
  const alive = pidAlive && !stale;
  const healthy = (alive || state === "completed") && progress.warnings.length === 0;
  const lastSave = progress.last_save_at === null ? null : Date.parse(progress.last_save_at);
  return {
    dir: resolve(dir), state_dir: stateDir, state, alive, pid, pid_alive: pidAlive, heartbeat_age_ms: age ?? null,
    child_pid: progress.child_pid, child_alive: progress.child_pid !== null && isAlive(progress.child_pid),
    epoch: progress.epoch, step: progress.step, loss: progress.loss, total_epochs: progress.total_epochs, total_steps: progress.total_steps,
    eta_seconds: alive ? progress.eta_seconds : null,
    last_report_at: lastReport === undefined ? null : new Date(Math.round(lastReport)).toISOString(), last_report_age_ms: lastReport === undefined ? null : now - lastReport,
    last_save_at: progress.last_save_at, last_save_age_ms: lastSave === null ? null : now - lastSave,
    next_save_expected_at: progress.next_save_expected_at, latest_valid: progress.latest_valid, best: progress.best,
    restarts: progress.restarts, warnings: progress.warnings, outcome: progress.outcome,
    workers: progress.workers?.map((w) => ({ ...w, alive: w.status === "running" && w.pid !== null && isAlive(w.pid) })) ?? null,
    units: progress.units ?? null, exit_code: healthy ? 0 : 1,
  };
}
