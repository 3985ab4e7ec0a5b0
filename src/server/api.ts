import { LOG_TAIL_DEFAULT, LOG_TAIL_MAX, readLogTail, readRestartEvents } from "./log-view.js";
import { readRunMetrics } from "./metrics.js";
import type { RunMonitor } from "./monitor.js";
import { checkpointViews, failureViews } from "./run-view.js";
import { RUN_ID_PATTERN } from "./runs.js";
import { stateFileMtime } from "./state-file.js";

/**
 * The JSON API, read-only:
 *   GET /api/runs                  {now, runs: [summary]}
 *   GET /api/runs/:id              {now, run, progress, heartbeat_at, metric, checkpoints, failed, restarts, warnings}
 *   GET /api/runs/:id/log?tail=N   {now, lines, size, truncated}  (N: 1..5000, default 200)
 *   GET /api/runs/:id/metrics      {now, x, series: [{name, source, points: [[x, y]]}]}
 * Errors are `{"error": {"code", "message"}}` with the matching status.
 */

export interface ApiResponse {
  status: number;
  body: unknown;
}

export function apiError(status: number, code: string, message: string): ApiResponse {
  return { status, body: { error: { code, message } } };
}

const notFound = (id: string): ApiResponse => apiError(404, "NOT_FOUND", `no run with id ${JSON.stringify(id)}`);

export function listRuns(monitor: RunMonitor): ApiResponse {
  return { status: 200, body: { now: Date.now(), runs: monitor.summaries() } };
}

export async function runDetail(monitor: RunMonitor, id: string): Promise<ApiResponse> {
  const known = lookUp(monitor, id);
  if (known === undefined) return notFound(id);
  const { run, facts, summary } = known;
  const { progress, manifest } = facts;
  const heartbeat = await stateFileMtime(run.stateDir, "heartbeat");
  const views = await monitor.memo(id, "detail", async () => ({
    checkpoints: checkpointViews(manifest, run.dir), failed: failureViews(manifest, run.dir), restartEvents: await readRestartEvents(run),
  }));
  if (views === undefined) return notFound(id);
  return {
    status: 200,
    body: {
      now: Date.now(), run: summary,
      progress: progress === undefined ? null : {
        status: progress.status, started_at: progress.started_at, child_started_at: progress.child_started_at, command: progress.command,
        child_command: progress.child_command, last_exit: progress.last_exit, next_save_expected_at: progress.next_save_expected_at,
        reported: progress.reported, heartbeat_interval_ms: progress.heartbeat_interval_ms, updated_at: progress.updated_at,
      },
      heartbeat_at: heartbeat === undefined ? null : new Date(Math.round(heartbeat)).toISOString(),
      metric: manifest?.metric ?? null,
      checkpoints: views.checkpoints,
      failed: views.failed,
      restarts: { count: summary.restarts, max: summary.max_restarts, events: views.restartEvents },
      warnings: summary.warnings,
    },
  };
}

export async function runLog(monitor: RunMonitor, id: string, query: URLSearchParams): Promise<ApiResponse> {
  const known = lookUp(monitor, id);
  if (known === undefined) return notFound(id);
  const raw = query.get("tail");
  const tail = raw === null ? LOG_TAIL_DEFAULT : /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(tail >= 1 && tail <= LOG_TAIL_MAX)) return apiError(400, "BAD_REQUEST", `tail: expected a whole number from 1 to ${LOG_TAIL_MAX}, got ${JSON.stringify(raw)}`);
  const log = await monitor.memo(id, "log", (run) => readLogTail(run, LOG_TAIL_MAX)); // one read serves every tail length
  if (log === undefined) return apiError(404, "NOT_FOUND", "this run has no readable run.log");
  return { status: 200, body: { now: Date.now(), lines: log.lines.slice(-tail), size: log.size, truncated: log.truncated || log.lines.length > tail } };
}

export async function runMetrics(monitor: RunMonitor, id: string): Promise<ApiResponse> {
  const known = lookUp(monitor, id);
  if (known === undefined) return notFound(id);
  const metrics = await monitor.memo(id, "metrics", (run, facts) => readRunMetrics(run, facts.manifest));
  if (metrics === undefined) return notFound(id);
  return { status: 200, body: { now: Date.now(), ...metrics } };
}

function lookUp(monitor: RunMonitor, id: string): ReturnType<RunMonitor["get"]> {
  return RUN_ID_PATTERN.test(id) ? monitor.get(id) : undefined;
}
