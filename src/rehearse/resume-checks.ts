import { basename } from "node:path";
import { listCheckpoints, qualifies } from "../catalog/catalog.js";
import type { CatalogEntry } from "../catalog/entry.js";
import { isAliasName } from "../catalog/sequence.js";
import { describeExit, seconds, succeeded } from "./attempt.js";
import { fail, pass, skip, type ChecklistLine } from "./checklist.js";
import { compareFinals } from "./compare.js";
import type { KilledRun } from "./killed-run.js";
import type { ResolvedRehearseOptions } from "./options.js";
import type { ReferenceRun } from "./reference-run.js";

/** The checklist lines about the killed run: what the kill left, where the restart resumed, how it ended. */

type Position = { unit: "epoch" | "step"; of: (e: CatalogEntry) => number | undefined };

export function killLeavesValidLine(killed: KilledRun, killAfterMs: number | undefined): ChecklistLine {
  if (killed.killedAfterMs === undefined) return fail("kill-leaves-valid", notKilled(killed, killAfterMs));
  const broken = killed.leftBroken[0];
  if (broken) {
    const why = broken.problems.find((p) => p.severity === "error") ?? broken.problems[0];
    return fail("kill-leaves-valid", `after SIGKILL at ${seconds(killed.killedAfterMs)}, ${basename(broken.path)} is ${broken.verdict}${why ? ` (${why.code})` : ""}: the save is not atomic (write a temp file, fsync, rename it over the target)`);
  }
  return pass("kill-leaves-valid", `SIGKILL at ${seconds(killed.killedAfterMs)} (${killed.trigger === "timer" ? "--kill-after" : `after ${basename(killed.trigger ?? "")} appeared`}) left only whole checkpoints`);
}

export async function resumePositionLine(killed: KilledRun, ref: ReferenceRun): Promise<ChecklistLine> {
  if (killed.killedAfterMs === undefined) return skip("resume-position", "the run was not killed");
  if (!killed.resumeFrom || killed.restartedAt === undefined || !killed.second) return fail("resume-position", `nothing to resume from after the kill: ${killed.noResumeReason ?? "no valid checkpoint"}`);
  if (!succeeded(killed.second)) return fail("resume-position", `the restarted command (--resume ${basename(killed.resumeFrom.path)}) ${describeExit(killed.second)}`);
  const position = positionOf(ref);
  const from = position.of(killed.resumeFrom);
  if (from === undefined) return fail("resume-position", `${basename(killed.resumeFrom.path)} records no ${position.unit}`);
  const restartedAt = killed.restartedAt;
  const written = (await seriesOf(killed.dir)).filter((e) => e.mtimeMs >= restartedAt).sort((a, b) => a.mtimeMs - b.mtimeMs);
  const next = written[0];
  const refFinal = ref.series.at(-1);
  if (!next && refFinal !== undefined && position.of(refFinal) === from) return pass("resume-position", `resumed from the final checkpoint ${basename(killed.resumeFrom.path)} (${position.unit} ${from}); nothing was left to train`);
  if (!next) return fail("resume-position", `the restarted run wrote no checkpoint after resuming from ${basename(killed.resumeFrom.path)} (${position.unit} ${from})`);
  const at = position.of(next);
  const expected = ref.series.map(position.of).filter((p): p is number => p !== undefined && p > from).sort((a, b) => a - b)[0];
  const resumed = `resumed from ${basename(killed.resumeFrom.path)} (${position.unit} ${from})`;
  if (at === undefined || at <= from) return fail("resume-position", `${position.unit} counter restarted: ${resumed}, but its next checkpoint ${basename(next.path)} records ${position.unit} ${at ?? "none"}${expected !== undefined ? ` (expected ${expected})` : ""}`);
  if (expected !== undefined && at !== expected) return fail("resume-position", `${resumed}; its next checkpoint records ${position.unit} ${at}, the reference saved ${position.unit} ${expected} next`);
  return pass("resume-position", `${resumed}; next checkpoint ${basename(next.path)} at ${position.unit} ${at}, as in the reference`);
}

export async function finalMatchLine(killed: KilledRun, ref: ReferenceRun, options: ResolvedRehearseOptions): Promise<ChecklistLine> {
  if (!killed.second || !succeeded(killed.second)) return skip("final-match", "the restarted run did not complete");
  const resumedFinal = (await seriesOf(killed.dir)).at(-1);
  const refFinal = ref.series.at(-1);
  if (!resumedFinal || !refFinal) return fail("final-match", "no final checkpoint to compare");
  const names = `${basename(resumedFinal.path)} vs the reference's ${basename(refFinal.path)}`;
  const result = await compareFinals(refFinal.path, resumedFinal.path, options.tolerance);
  if (result.outcome === "identical") return pass("final-match", `${names}: bitwise identical`);
  const max = `max difference ${Number(result.maxAbsDiff.toPrecision(4))}${result.maxAt ? ` at ${result.maxAt}` : ""}`;
  if (result.outcome === "within-tolerance") return pass("final-match", `${names}: within --tolerance ${options.tolerance} (${max}; ${result.differing.length} leaves differ)`);
  return fail("final-match", `${names}: ${result.diagnosis ?? "they differ"}${result.maxAt ? ` [${max}]` : ""}`);
}

export async function finalNewestLine(killed: KilledRun | undefined, ref: ReferenceRun, options: ResolvedRehearseOptions): Promise<ChecklistLine> {
  const position = positionOf(ref);
  const target = options.epochs ?? options.steps;
  const dirs = [ref.dir, ...(killed?.second && succeeded(killed.second) ? [killed.dir] : [])];
  const found: string[] = [];
  for (const dir of dirs) {
    const series = await seriesOf(dir);
    const final = series.at(-1);
    if (!final) return fail("final-newest", `no checkpoint in ${dir}`);
    const newest = [...series].sort((a, b) => b.mtimeMs - a.mtimeMs)[0]!;
    if (newest.path !== final.path) return fail("final-newest", `in ${basename(dir)}/, ${basename(newest.path)} is newer than the final ${basename(final.path)}`);
    if (!qualifies(final)) return fail("final-newest", `${basename(dir)}/${basename(final.path)} is ${final.verdict} (${final.problems[0]?.code ?? ""})`);
    const at = position.of(final);
    if (target !== undefined && at !== target) return fail("final-newest", `${basename(dir)}/${basename(final.path)} records ${position.unit} ${at ?? "none"}, expected ${target} (--${options.epochs !== undefined ? "epochs" : "steps"})`);
    found.push(`${basename(dir)}/${basename(final.path)}`);
  }
  return pass("final-newest", `${found.join(", ")} at ${position.unit} ${position.of(ref.series.at(-1)!)}${target !== undefined ? ` of ${target}` : ""}, valid and newest`);
}

/** A directory's checkpoints as a series (structure read, no aliases), oldest first. */
async function seriesOf(dir: string): Promise<CatalogEntry[]> {
  const catalog = await listCheckpoints(dir, { requireComplete: false });
  return catalog.entries.filter((e) => !e.inProgress && !isAliasName(e.path));
}

function positionOf(ref: ReferenceRun): Position {
  return ref.check.unit === "step" ? { unit: "step", of: (e) => e.step } : { unit: "epoch", of: (e) => e.epoch };
}

function notKilled(killed: KilledRun, killAfterMs: number | undefined): string {
  const hint = killAfterMs === undefined ? "give --kill-after, or make the run longer" : `give a --kill-after below ${seconds(killAfterMs)}`;
  if (succeeded(killed.first)) return `the command finished (${seconds(killed.first.durationMs)}) before it could be killed: ${hint}`;
  return `the command ${describeExit(killed.first)} before it could be killed`;
}
