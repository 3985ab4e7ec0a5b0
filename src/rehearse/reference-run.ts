import { basename, join } from "node:path";
import { checkRun, type RunCheck } from "../catalog/check-run.js";
import type { CatalogEntry } from "../catalog/entry.js";
import { isAliasName } from "../catalog/sequence.js";
import { describeExit, freshAttemptDir, seconds, succeeded, writeLaunchLog, type LaunchEnd } from "./attempt.js";
import type { Launcher } from "./attempt.js";
import { fail, pass, skip, type ChecklistLine } from "./checklist.js";
import type { ResolvedRehearseOptions } from "./options.js";

/**
 * The reference run: the command once, uninterrupted, in `<dir>/reference/`. Its
 * checkpoints are then checked as a series (catalog/check-run.ts: every byte verified,
 * completeness, expectations, positions, weights, best) and the time between saves is
 * read from their modification times.
 */

export interface ReferenceRun {
  dir: string;
  end: LaunchEnd;
  startedAt: number;
  check: RunCheck;
  /** The series, oldest first, without in-progress files or aliases (`best.pt`). */
  series: CatalogEntry[];
  /** Launch to first save, then between saves, in milliseconds. */
  gapsMs: number[];
  log: string;
}

export const MIN_CHECKPOINTS = 2;

export async function runReference(options: ResolvedRehearseOptions, env: NodeJS.ProcessEnv, launcher: Launcher): Promise<ReferenceRun> {
  const dir = await freshAttemptDir(options.dir, "reference");
  const started = launcher.launch({
    command: options.command, dir, env, progressFile: join(options.dir, "reference.progress.jsonl"), timeoutMs: options.timeoutMs,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  const end = await started.ended;
  const log = await writeLaunchLog(options.dir, "reference", [end]);
  const total = options.epochs ?? options.steps;
  const check = await checkRun(dir, {
    writeFailedList: false, requireComplete: options.requireComplete,
    ...(options.expect ? { expect: options.expect } : {}), ...(total !== undefined ? { total } : {}),
  });
  const series = check.entries.filter((e) => !e.inProgress && !isAliasName(e.path));
  const times = series.map((e) => e.mtimeMs).sort((a, b) => a - b);
  const gapsMs = times.map((t, i) => t - (i === 0 ? started.startedAt : times[i - 1]!));
  return { dir, end, startedAt: started.startedAt, check, series, gapsMs, log };
}

/** Whether the reference run gave the later checks something to work with. */
export function referenceUsable(ref: ReferenceRun): boolean {
  return succeeded(ref.end) && ref.series.length >= MIN_CHECKPOINTS;
}

export function referenceRunLine(ref: ReferenceRun): ChecklistLine {
  const n = ref.series.length;
  if (!succeeded(ref.end)) return fail("reference-run", `the command ${describeExit(ref.end)}; ${n} checkpoint${n === 1 ? "" : "s"} written (log: ${ref.log})`);
  if (n < MIN_CHECKPOINTS) return fail("reference-run", `the command finished but wrote ${n} checkpoint${n === 1 ? "" : "s"} into {dir} (need at least ${MIN_CHECKPOINTS}); does it save into {dir}?`);
  return pass("reference-run", `exit 0 after ${seconds(ref.end.durationMs)}, ${n} checkpoints (${basename(ref.series[0]!.path)} .. ${basename(ref.series[n - 1]!.path)})`);
}

export function saveIntervalLine(ref: ReferenceRun, maxGapMs: number | undefined): ChecklistLine {
  if (ref.gapsMs.length === 0) return skip("save-interval", "no saves to measure");
  const between = ref.gapsMs.slice(1);
  const measured = `first save ${seconds(ref.gapsMs[0]!)} after launch${between.length > 0 ? `, then every ${seconds(mean(between))} on average (longest ${seconds(Math.max(...between))})` : ""}`;
  if (maxGapMs === undefined) return skip("save-interval", `${measured}; give --max-gap to check it`);
  const worst = Math.max(...ref.gapsMs);
  if (worst > maxGapMs) return fail("save-interval", `${measured}: ${seconds(worst)} without a save exceeds --max-gap ${seconds(maxGapMs)}`);
  return pass("save-interval", `${measured}, within --max-gap ${seconds(maxGapMs)}`);
}

export function checkpointsValidLine(ref: ReferenceRun, expectCount: number): ChecklistLine {
  const bad = ref.check.entries.filter((e) => !e.inProgress && e.verdict !== "valid");
  if (bad.length > 0) {
    const first = bad[0]!;
    const why = first.problems.find((p) => p.severity === "error") ?? first.problems[0];
    return fail("checkpoints-valid", `${bad.length} of ${ref.check.entries.length} fail: ${basename(first.path)} is ${first.verdict}${why ? ` (${why.code}: ${why.message})` : ""}`);
  }
  const expectations = expectCount > 0 ? ` and meet ${expectCount} --expect value${expectCount === 1 ? "" : "s"}` : "";
  return pass("checkpoints-valid", `all ${ref.check.entries.length} verify (every byte CRC-checked, NaN/Inf scanned), are complete${expectations}`);
}

export function progressLine(ref: ReferenceRun): ChecklistLine {
  const errors = ref.check.problems.filter((p) => p.severity === "error" && p.code !== "BEST_NOT_BEST");
  if (errors.length > 0) return fail("progress", `${errors[0]!.code}: ${errors[0]!.message}`);
  const noLoss = ref.series.filter((e) => e.loss === undefined);
  if (noLoss.length > 0) return fail("progress", `${basename(noLoss[0]!.path)} records no loss (save a "loss" value with each checkpoint)`);
  if (ref.check.unit === undefined) return fail("progress", "no checkpoint records an epoch or a step");
  const positions = ref.series.map((e) => (ref.check.unit === "step" ? e.step : e.epoch));
  const loss = ref.check.loss;
  const warnings = ref.check.problems.filter((p) => p.severity === "warning").map((p) => p.code);
  return pass("progress", `${ref.check.unit} ${positions.join(", ")}; weights change each save${loss ? `; loss ${short(loss.first)} -> ${short(loss.last)}` : ""}${warnings.length > 0 ? ` (warnings: ${warnings.join(", ")})` : ""}`);
}

export function bestLine(ref: ReferenceRun): ChecklistLine {
  const wrong = ref.check.problems.find((p) => p.code === "BEST_NOT_BEST");
  if (wrong) return fail("best", wrong.message);
  if (ref.check.calledBest.length === 0) return skip("best", `no checkpoint is called best${ref.check.best ? ` (the best by ${ref.check.metric?.name} is ${basename(ref.check.best)})` : ""}`);
  return pass("best", `${ref.check.calledBest.map((p) => basename(p)).join(", ")} has the best ${ref.check.metric?.name ?? "metric"} of the run`);
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function short(value: number): string {
  return String(Number(value.toPrecision(4)));
}
