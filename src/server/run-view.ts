import { relative } from "node:path";
import { parseManifest, type Manifest, type ManifestCheckpoint } from "../manifest/manifest.js";
import type { ProgressJson, RunWarning } from "../run/progress.js";
import type { UnitCounts } from "../run/workers/scheduler.js";
import type { WorkerSlotJson } from "../run/workers/worker-status.js";
import { readRunStatus, type RunHealth } from "../run/status.js";
import type { KnownRun } from "./runs.js";
import { readStateFile, readStateJson } from "./state-file.js";

/**
 * A run as the dashboard shows it, built from its run files (progress.json through
 * `ckptguard status`'s own reader, manifest.json, run.log's size). Timestamps, never ages:
 * a summary only changes when a file does, so the SSE feed pushes changes and nothing else;
 * the page turns timestamps into ages against the server's `now`.
 */

/** The four states the issue asks the page to show, plus `unknown` (no readable progress.json yet). */
export type DashboardState = "running" | "stale" | "crashed" | "finished" | "unknown";

export interface RunSummary {
  id: string;
  name: string;
  dir: string;
  state: DashboardState;
  /** `ckptguard status`'s finer state (`backoff`, `dead`, `completed`, ...). */
  health: RunHealth | "unknown";
  epoch: number | null;
  total_epochs: number | null;
  step: number | null;
  total_steps: number | null;
  loss: number | null;
  /** Done so far, 0..1, by epochs when the total is known, else by steps. */
  fraction: number | null;
  eta_seconds: number | null;
  /** When the training script last reported progress (`ckptguard status`'s `last_report_at`). */
  last_report_at: string | null;
  last_save_at: string | null;
  max_gap_ms: number | null;
  restarts: number;
  max_restarts: number | null;
  warnings: RunWarning[];
  outcome: ProgressJson["outcome"];
  /** Checkpoint names relative to the run directory. */
  latest_valid: string | null;
  best: { name: string; metric: { name: string; value: number } | null } | null;
  checkpoints: { total: number; valid: number; invalid: number };
  log_bytes: number;
  /** `run --workers`: each worker slot and the units by state; null for a single command. */
  workers: WorkerSlotJson[] | null;
  units: UnitCounts | null;
}

export interface CheckpointView {
  name: string;
  size: number;
  saved_at: string;
  verdict: ManifestCheckpoint["verdict"];
  problems: Array<{ code: string; severity: string; message: string }>;
  epoch: number | null;
  step: number | null;
  loss: number | null;
  metrics: Record<string, number>;
  latest_valid: boolean;
  best: boolean;
}

/** manifest.json and progress.json are small; anything this large is not ours. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

const HEALTH_STATE: Record<RunHealth, DashboardState> = {
  starting: "running", running: "running", backoff: "running", stopping: "running",
  stale: "stale", dead: "crashed", failed: "crashed", completed: "finished", stopped: "finished",
};

export async function readManifestOf(run: KnownRun): Promise<Manifest | undefined> {
  return parseManifest(await readStateJson(run.stateDir, "manifest.json", MAX_JSON_BYTES));
}

export async function readProgressOf(run: KnownRun): Promise<ProgressJson | undefined> {
  const parsed = await readStateJson(run.stateDir, "progress.json", MAX_JSON_BYTES);
  return typeof parsed === "object" && parsed !== null && (parsed as { version?: unknown }).version === 1 ? (parsed as ProgressJson) : undefined;
}

/** What a summary is built from; the monitor reads these once per change and caches them. */
export interface RunFacts {
  progress: ProgressJson | undefined;
  manifest: Manifest | undefined;
  logBytes: number;
}

export async function readRunFacts(run: KnownRun): Promise<RunFacts> {
  const [progress, manifest, log] = await Promise.all([readProgressOf(run), readManifestOf(run), readStateFile(run.stateDir, "run.log", 0)]);
  return { progress, manifest, logBytes: log?.size ?? 0 };
}

export async function summarizeRun(run: KnownRun, facts: RunFacts, options: { now?: number; defaultMaxGapMs?: number } = {}): Promise<RunSummary> {
  const { progress, manifest } = facts;
  // readRunStatus opens progress.json itself: only once our refusing reader accepted that file.
  const status = progress === undefined ? undefined : await readRunStatus(run.dir, { stateDir: run.stateDir, now: options.now ?? Date.now() }).catch(() => undefined);
  const name = (path: string): string => relative(manifest?.dir || run.dir, path) || path;
  const checkpoints = manifest?.checkpoints ?? [];
  const valid = checkpoints.filter((c) => c.verdict === "valid").length;
  const fraction = status === undefined ? null
    : status.total_epochs && status.epoch !== null ? Math.min(1, status.epoch / status.total_epochs)
      : status.total_steps && status.step !== null ? Math.min(1, status.step / status.total_steps)
        : progress?.units && progress.units.total > 0 ? progress.units.done / progress.units.total : null;
  return {
    id: run.id, name: run.name, dir: run.dir,
    state: status === undefined ? "unknown" : HEALTH_STATE[status.state], health: status?.state ?? "unknown",
    epoch: status?.epoch ?? null, total_epochs: status?.total_epochs ?? null, step: status?.step ?? null, total_steps: status?.total_steps ?? null,
    loss: status?.loss ?? null, fraction, eta_seconds: status?.eta_seconds ?? null,
    last_report_at: status?.last_report_at ?? null, last_save_at: status?.last_save_at ?? null,
    max_gap_ms: progress?.max_gap_ms ?? options.defaultMaxGapMs ?? null, restarts: status?.restarts ?? 0, max_restarts: progress?.max_restarts ?? null,
    warnings: status?.warnings ?? [], outcome: status?.outcome ?? null,
    latest_valid: status?.latest_valid ? name(status.latest_valid.path) : null,
    best: status?.best ? { name: name(status.best.path), metric: status.best.metric ?? null } : null,
    checkpoints: { total: checkpoints.length, valid, invalid: checkpoints.length - valid },
    log_bytes: facts.logBytes,
    workers: progress?.workers ?? null, units: progress?.units ?? null,
  };
}

export function checkpointViews(manifest: Manifest | undefined, dir: string): CheckpointView[] {
  if (manifest === undefined) return [];
  return manifest.checkpoints.map((c) => ({
    name: relative(manifest.dir || dir, c.path) || c.path, size: c.size, saved_at: new Date(c.mtime).toISOString(), verdict: c.verdict,
    problems: c.problems.map((p) => ({ code: p.code, severity: p.severity, message: p.message })),
    epoch: c.epoch ?? null, step: c.step ?? null, loss: c.loss ?? null, metrics: c.metrics,
    latest_valid: c.path === manifest.latest_valid, best: c.path === manifest.best,
  }));
}

/** Invalid file versions ever seen (also ones since replaced or deleted), newest first. */
export function failureViews(manifest: Manifest | undefined, dir: string): Array<{ name: string; verdict: string; seen_at: string; size: number; codes: string[] }> {
  if (manifest === undefined) return [];
  return [...manifest.failed].reverse().map((f) => ({
    name: relative(manifest.dir || dir, f.path) || f.path, verdict: f.verdict, seen_at: f.seen_at, size: f.size,
    codes: [...new Set(f.problems.filter((p) => p.severity === "error").map((p) => p.code))],
  }));
}
