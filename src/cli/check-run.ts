import type { Command } from "commander";
import { relative } from "node:path";
import { CkptError } from "../errors.js";
import { checkRun, type RunCheck } from "../catalog/check-run.js";
import { addCatalogFlags, catalogOptions, type CatalogFlags } from "./catalog-flags.js";
import { entryJson, renderEntryTable } from "./catalog-render.js";
import type { CliContext, ExitCode } from "./context.js";
import { colorEnabled, palette } from "./style.js";

interface CheckRunFlags extends CatalogFlags {
  json?: boolean;
  total?: string;
  interval?: string;
  writeFailed?: boolean;
}

export function registerCheckRun(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  addCatalogFlags(
    program
      .command("check-run")
      .description("check a run's checkpoints together: steps increase without gaps, weights change, loss trend, best is best, failed files listed (and written to failed_checkpoints.txt)")
      .argument("<dir>", "run directory, searched recursively")
      .option("--json", "print the run check as JSON")
      .option("--total <n>", "the run's target length, in epochs (or steps when checkpoints record no epoch); default: from the checkpoint's config")
      .option("--interval <n>", "the save interval in steps (or epochs when checkpoints record no step); default: the distance most adjacent checkpoints share")
      .option("--no-write-failed", "do not write failed_checkpoints.txt into the directory"),
  ).action(async (dir: string, flags: CheckRunFlags) => {
    const total = flags.total === undefined ? undefined : parsePositive(flags.total, "--total");
    const interval = flags.interval === undefined ? undefined : parsePositive(flags.interval, "--interval");
    const result = await checkRun(dir, {
      ...catalogOptions(flags), writeFailedList: flags.writeFailed !== false,
      ...(total !== undefined ? { total } : {}), ...(interval !== undefined ? { interval } : {}),
    });
    if (flags.json) ctx.stdout.write(`${JSON.stringify(runCheckJson(result), null, 2)}\n`);
    else ctx.stdout.write(renderCheckRun(result, colorEnabled(ctx.stdout, ctx.env)));
    setExit(result.exitCode);
  });
}

function parsePositive(text: string, option: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected a positive number of epochs or steps`);
  return n;
}

export function runCheckJson(result: RunCheck) {
  const marks = { latest: result.latest, best: result.best };
  return {
    dir: result.dir,
    check: "full",
    latest: result.latest ?? null,
    best: result.best ?? null,
    called_best: result.calledBest,
    metric: result.metric ?? null,
    unit: result.unit ?? null,
    interval: result.interval ?? null,
    loss: result.loss ?? null,
    progress: result.progress ? { done: result.progress.done, total: result.progress.total, unit: result.progress.unit, resume_from: result.progress.resumeFrom ?? null } : null,
    problems: result.problems,
    failed: result.failed,
    failed_list: result.failedList ?? null,
    in_progress: result.inProgress,
    entries: result.entries.map((e) => entryJson(e, marks)),
    exit_code: result.exitCode,
  };
}

export function renderCheckRun(result: RunCheck, color: boolean): string {
  const c = palette(color);
  const rel = (path: string) => relative(result.dir, path) || path;
  const lines = [`${c.bold(result.dir)}: ${result.entries.length} checkpoints, every byte verified (CRC, NaN/Inf)`];
  lines.push(...renderEntryTable(result.entries, result.dir, c, { latest: result.latest, best: result.best }).map((l) => `  ${l}`), "");
  if (result.unit) lines.push(`series: by ${result.unit}${result.interval !== undefined ? `, saved every ${result.interval}` : ""}`);
  if (result.loss) lines.push(`loss: ${result.loss.first} -> ${result.loss.last} (${result.loss.trend}, min ${result.loss.min}, ${result.loss.points} checkpoints)`);
  if (result.metric) lines.push(`best by ${result.metric.name} (${result.metric.mode}): ${result.best ? rel(result.best) : "none"}${result.calledBest.length > 0 ? `; called best: ${result.calledBest.map(rel).join(", ")}` : ""}`);
  for (const p of result.problems) lines.push(`${(p.severity === "error" ? c.red : c.yellow)(p.severity.padEnd(7))} ${p.code}: ${p.message}`);
  if (result.failed.length > 0) {
    lines.push(`failed (${result.failed.length})${result.failedList ? `, listed in ${result.failedList}` : ""}:`);
    for (const f of result.failed) lines.push(`  ${f.path}  ${f.verdict}  ${f.code}: ${f.message}`);
  }
  if (result.inProgress.length > 0) lines.push(`in progress (not checked): ${result.inProgress.map(rel).join(", ")}`);
  if (result.progress) {
    const p = result.progress;
    lines.push(`Progress: ${p.done}/${p.total} ${p.unit} complete, resuming from: ${p.resumeFrom ?? "none (fresh start)"}`);
  } else {
    lines.push(`resuming from: ${result.latest ?? "none (fresh start)"}`);
  }
  lines.push(result.exitCode === 0 ? c.green("run OK") : c.red("run has problems"));
  return `${lines.join("\n")}\n`;
}
