import { unlink } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { writeFileAtomic } from "../manifest/atomic-write.js";
import { exitCodeOf, problem, type Problem } from "../verify/report.js";
import { metricValue, rankByMetric, type BestBy, type MetricMode } from "./best.js";
import { listCheckpoints, qualifies, type CatalogOptions } from "./catalog.js";
import type { CatalogEntry, EntryRead } from "./entry.js";
import { isAliasName, sequenceFacts, type LossTrend } from "./sequence.js";
import { weightsFingerprint } from "./weights-fingerprint.js";

/**
 * `check-run`: a run directory's checkpoints taken together, each fully verified (CRC and
 * NaN/Inf scan): the series checks of sequence.ts, whether the checkpoint called best is
 * best, which files failed (also written to `failed_checkpoints.txt`), and how far the
 * run got.
 */

/** Written into the run directory, one failed checkpoint a line: `path<TAB>verdict<TAB>CODE: message`. */
export const FAILED_LIST_NAME = "failed_checkpoints.txt";

export interface CheckRunOptions extends Omit<CatalogOptions, "check" | "onRead" | "best"> {
  /** Target length of the run, in epochs when checkpoints record epochs, else steps (default: from the checkpoint's config). */
  total?: number;
  /** Save interval in the series' unit (steps, or epochs); default: the distance most adjacent checkpoints share. */
  interval?: number;
  best?: BestBy;
  /** Write (or remove, when nothing failed) `failed_checkpoints.txt` in `dir` (default true). */
  writeFailedList?: boolean;
}

export interface FailedCheckpoint {
  path: string;
  verdict: string;
  code: string;
  message: string;
}

export interface RunProgress {
  done: number;
  total: number;
  unit: "epochs" | "steps";
  /** The newest valid, complete checkpoint; undefined when the run must start fresh. */
  resumeFrom?: string;
}

export interface RunCheck {
  dir: string;
  /** Oldest first, every one fully checked. */
  entries: CatalogEntry[];
  /** Run-level problems (the series, best); each file's own are in its entry. */
  problems: Problem[];
  failed: FailedCheckpoint[];
  /** Where the failed list was written; undefined when nothing failed or writing was off. */
  failedList?: string;
  inProgress: string[];
  latest?: string;
  best?: string;
  /** Checkpoints that claim to be the best (`best.pt`, HF `best_model_checkpoint`). */
  calledBest: string[];
  metric?: { name: string; mode: MetricMode };
  unit?: "step" | "epoch";
  interval?: number;
  loss?: LossTrend;
  progress?: RunProgress;
  exitCode: 0 | 1 | 3;
}

/** Config keys holding a run's target length, by unit, wherever a config dict keeps them. */
const TOTAL_KEYS = {
  epochs: ["epochs", "max_epochs", "num_epochs", "n_epochs", "total_epochs", "num_train_epochs"],
  steps: ["max_steps", "max_iters", "total_steps", "num_steps", "train_steps", "max_iter"],
} as const;

export async function checkRun(dir: string, options: CheckRunOptions = {}): Promise<RunCheck> {
  const fingerprints = new Map<string, string>();
  const hfBest = new Set<string>();
  const onRead = async (read: EntryRead): Promise<void> => {
    const model = read.models[0];
    const fingerprint = model ? await weightsFingerprint(model).catch(() => undefined) : undefined;
    if (fingerprint !== undefined) fingerprints.set(read.entry.path, fingerprint);
    const named = read.hf?.trainerState?.best_model_checkpoint;
    if (typeof named === "string" && named !== "") hfBest.add(basename(named));
  };
  const catalog = await listCheckpoints(dir, { ...options, check: "full", onRead });
  const entries = catalog.entries;
  const series = entries.filter((e) => !e.inProgress && !isAliasName(e.path));
  const sequence = sequenceFacts(series.map((entry) => {
    const fingerprint = fingerprints.get(entry.path);
    return fingerprint === undefined ? { entry } : { entry, fingerprint };
  }), dir, options.interval);

  const calledBest = entries.filter((e) => /best/i.test(basename(e.path)) || hfBest.has(basename(e.path)));
  const problems = [...sequence.problems];
  if (catalog.metric) problems.push(...bestProblems(calledBest, series, catalog.metric, dir));

  const failed = entries.filter((e) => !e.inProgress && e.verdict !== "valid").map((e) => failure(e, dir));
  const check: RunCheck = {
    dir, entries, problems, failed,
    inProgress: entries.filter((e) => e.inProgress).map((e) => e.path),
    calledBest: calledBest.map((e) => e.path),
    exitCode: runExitCode(entries, problems),
  };
  if (catalog.latest) check.latest = catalog.latest.path;
  if (catalog.best) check.best = catalog.best.path;
  if (catalog.metric) check.metric = catalog.metric;
  if (sequence.unit) check.unit = sequence.unit;
  if (sequence.interval !== undefined) check.interval = sequence.interval;
  if (sequence.loss) check.loss = sequence.loss;
  const progress = runProgress(catalog.latest, entries, options.total);
  if (progress) check.progress = progress;
  if (options.writeFailedList !== false) {
    const written = await writeFailedList(dir, check.failed);
    if (written) check.failedList = written;
  }
  return check;
}

/** BEST_NOT_BEST for each checkpoint called best while another valid one has a better metric. */
function bestProblems(calledBest: readonly CatalogEntry[], series: readonly CatalogEntry[], metric: { name: string; mode: MetricMode }, root: string): Problem[] {
  const top = rankByMetric(series, metric.name, metric.mode).find(qualifies);
  if (!top) return [];
  const topValue = metricValue(top, metric.name)!;
  const out: Problem[] = [];
  for (const claimed of calledBest) {
    // best.pt may not record the metric itself; the series member it copies (same step/epoch) does.
    const twin = series.find((e) => e.path !== claimed.path && samePosition(e, claimed));
    const value = metricValue(claimed, metric.name) ?? (twin ? metricValue(twin, metric.name) : undefined);
    if (value === undefined) continue;
    const better = metric.mode === "min" ? topValue < value : topValue > value;
    if (better) {
      out.push({
        ...problem("BEST_NOT_BEST", `${relative(root, claimed.path)} has ${metric.name} ${value}, but ${relative(root, top.path)} has ${topValue} (${metric.mode} is best)`),
        details: { metric: metric.name, mode: metric.mode, claimed: claimed.path, claimed_value: value, best: top.path, best_value: topValue },
      });
    }
  }
  return out;
}

function samePosition(a: CatalogEntry, b: CatalogEntry): boolean {
  if (a.step !== undefined && b.step !== undefined) return a.step === b.step;
  return a.epoch !== undefined && a.epoch === b.epoch;
}

function failure(entry: CatalogEntry, root: string): FailedCheckpoint {
  const first = entry.problems.find((p) => p.severity === "error") ?? entry.problems[0];
  return { path: relative(root, entry.path) || entry.path, verdict: entry.verdict, code: first?.code ?? entry.verdict.toUpperCase(), message: first?.message ?? entry.verdict };
}

/** 3 when a checkpoint is unsafe; 1 when one failed or the series has an error; else 0. */
function runExitCode(entries: readonly CatalogEntry[], problems: readonly Problem[]): 0 | 1 | 3 {
  const fileCode = exitCodeOf(entries.filter((e) => !e.inProgress).map((e) => ({ path: e.path, format: "unknown" as const, verdict: e.verdict, problems: e.problems })));
  if (fileCode === 3) return 3;
  return fileCode === 1 || problems.some((p) => p.severity === "error") ? 1 : 0;
}

/** X of Y epochs (or steps), Y from `--total` or from the newest checkpoint's config. */
function runProgress(latest: CatalogEntry | undefined, entries: readonly CatalogEntry[], total: number | undefined): RunProgress | undefined {
  const source = latest ?? [...entries].reverse().find((e) => Object.keys(e.metrics).length > 0);
  const fromConfig = source ? configuredTotal(source) : undefined;
  const unit = total !== undefined ? (latest?.epoch !== undefined || latest === undefined ? "epochs" : "steps") : fromConfig?.unit;
  const target = total ?? fromConfig?.total;
  if (unit === undefined || target === undefined) return undefined;
  const done = (unit === "epochs" ? latest?.epoch : latest?.step) ?? 0;
  return latest ? { done, total: target, unit, resumeFrom: latest.path } : { done, total: target, unit };
}

function configuredTotal(entry: CatalogEntry): { total: number; unit: "epochs" | "steps" } | undefined {
  for (const unit of ["epochs", "steps"] as const) {
    if (unit === "epochs" && entry.epoch === undefined) continue;
    if (unit === "steps" && entry.step === undefined) continue;
    for (const key of TOTAL_KEYS[unit]) {
      const found = Object.entries(entry.metrics).find(([k, v]) => (k === key || k.endsWith(`.${key}`)) && Number.isFinite(v) && v > 0);
      if (found) return { total: found[1], unit };
    }
  }
  return undefined;
}

/** Writes the failed list atomically, or removes a stale one when nothing failed. */
async function writeFailedList(dir: string, failed: readonly FailedCheckpoint[]): Promise<string | undefined> {
  const path = join(dir, FAILED_LIST_NAME);
  if (failed.length === 0) {
    await unlink(path).catch(() => undefined);
    return undefined;
  }
  const oneLine = (text: string) => text.replace(/[\t\r\n]+/g, " ");
  await writeFileAtomic(path, failed.map((f) => `${f.path}\t${f.verdict}\t${f.code}: ${oneLine(f.message)}\n`).join(""));
  return path;
}
