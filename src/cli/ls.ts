import type { Command } from "commander";
import { relative } from "node:path";
import { listCheckpoints, type Catalog } from "../catalog/catalog.js";
import { exitCodeOf } from "../verify/report.js";
import { addCatalogFlags, catalogOptions, type CatalogFlags } from "./catalog-flags.js";
import { entryJson, firstProblem, renderEntryTable } from "./catalog-render.js";
import type { CliContext, ExitCode } from "./context.js";
import { colorEnabled, palette } from "./style.js";

interface LsFlags extends CatalogFlags {
  json?: boolean;
  verify?: boolean;
}

export function registerLs(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  addCatalogFlags(
    program
      .command("ls")
      .description("list a run directory's checkpoints (HF checkpoint-N/ dirs included) by the step/epoch they record, with verdicts, latest and best")
      .argument("<dir>", "run directory, searched recursively")
      .option("--json", "print {dir, check, latest, best, metric, entries: [...]} as JSON")
      .option("--verify", "verify every byte (CRC, NaN/Inf) instead of checking structure only"),
  ).action(async (dir: string, flags: LsFlags) => {
    const catalog = await listCheckpoints(dir, { ...catalogOptions(flags), check: flags.verify ? "full" : "structure" });
    if (flags.json) ctx.stdout.write(`${JSON.stringify(catalogJson(catalog), null, 2)}\n`);
    else ctx.stdout.write(renderLs(catalog, colorEnabled(ctx.stdout, ctx.env)));
    const settled = catalog.entries.filter((e) => !e.inProgress);
    setExit(exitCodeOf(settled.map((e) => ({ path: e.path, format: "unknown", verdict: e.verdict, problems: e.problems }))));
  });
}

export function catalogJson(catalog: Catalog) {
  const marks = { latest: catalog.latest?.path, best: catalog.best?.path };
  return {
    dir: catalog.dir,
    check: catalog.check,
    latest: catalog.latest?.path ?? null,
    best: catalog.best?.path ?? null,
    metric: catalog.metric ?? null,
    metrics_file: catalog.metricsFile ?? null,
    entries: catalog.entries.map((e) => entryJson(e, marks)),
  };
}

export function renderLs(catalog: Catalog, color: boolean): string {
  const c = palette(color);
  const how = catalog.check === "full" ? "every byte verified (CRC, NaN/Inf)" : "structure checked, no CRC pass (--verify for a full check)";
  const lines = [`${c.bold(catalog.dir)}: ${catalog.entries.length} checkpoint${catalog.entries.length === 1 ? "" : "s"}, ${how}`];
  if (catalog.entries.length === 0) return `${lines.join("\n")}\n`;
  lines.push(...renderEntryTable(catalog.entries, catalog.dir, c, { latest: catalog.latest?.path, best: catalog.best?.path }).map((l) => `  ${l}`));
  lines.push("", `latest valid: ${catalog.latest ? relative(catalog.dir, catalog.latest.path) : c.yellow("none")}`);
  if (catalog.metric) lines.push(`best by ${catalog.metric.name} (${catalog.metric.mode}): ${catalog.best ? relative(catalog.dir, catalog.best.path) : "none"}`);
  const failures = catalog.entries.filter((e) => e.verdict !== "valid");
  for (const e of failures) lines.push(`  ${relative(catalog.dir, e.path)}: ${firstProblem(e)}`);
  return `${lines.join("\n")}\n`;
}
