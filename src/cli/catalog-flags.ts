import type { Command } from "commander";
import { CkptError } from "../errors.js";
import type { MetricMode } from "../catalog/best.js";
import type { CatalogOptions } from "../catalog/catalog.js";
import { checkRules } from "../verify/checks.js";
import { parseKind } from "../verify/requirements.js";
import { collect } from "./verify.js";

/**
 * The flags `ls`, `latest` and `check-run` share: what counts as resumable, how the best
 * is ranked, and how long to watch for files still being written. Validated here, once.
 */

/** How long the CLI watches each file's size and mtime for a save still in progress. */
export const CLI_SETTLE_MS = 100;

export interface CatalogFlags {
  kind?: string;
  expect?: string[];
  require?: string[];
  minSize?: string;
  metric?: string;
  mode?: string;
  metricsFile?: string;
  settleMs?: string;
  allowGlobal?: string[];
}

export function addCatalogFlags(command: Command): Command {
  return command
    .option("--kind <kind>", "what a checkpoint must hold to count as resumable: training (model + optimizer + step/epoch, the default) or any", "training")
    .option("--expect <path=value>", "the value at a dotted path must equal VALUE (JSON or a bare string), e.g. config.hidden=64 (repeatable)", collect, [])
    .option("--require <key>", "a dotted key every resumable checkpoint must hold (repeatable)", collect, [])
    .option("--min-size <size>", "count files smaller than this (10MB, 1.5GiB, bytes) as incomplete")
    .option("--metric <name>", "metric that ranks the best checkpoint (default: the first of val_loss, eval_loss, valid_loss, best_val_loss, loss, train_loss recorded)")
    .option("--mode <min|max>", "whether a lower or a higher metric is better (default: max for accuracy-like names, else min)")
    .option("--metrics-file <path>", "metrics logged beside the checkpoints: JSON lines, JSON or CSV rows naming a checkpoint, step or epoch (default: metrics.jsonl/.json/.csv in the directory)")
    .option("--settle-ms <ms>", `how long to watch each file's size and mtime for a save still in progress`, String(CLI_SETTLE_MS))
    .option("--allow-global <module.name>", "trust one more pickle global (repeatable)", collect, []);
}

export function catalogOptions(flags: CatalogFlags): CatalogOptions {
  const kind = flags.kind ?? "training";
  if (kind !== "any") parseKind(kind);
  const options: CatalogOptions = {
    requireComplete: kind !== "any",
    rules: checkRules({ require: flags.require ?? [], expect: flags.expect ?? [], ...(flags.minSize !== undefined ? { minSize: flags.minSize } : {}) }),
    settleMs: parseNonNegativeInteger(flags.settleMs ?? String(CLI_SETTLE_MS), "--settle-ms"),
    allowGlobals: new Set(flags.allowGlobal ?? []),
  };
  if (flags.metricsFile !== undefined) options.metricsFile = flags.metricsFile;
  if (flags.metric !== undefined || flags.mode !== undefined) {
    options.best = {
      ...(flags.metric !== undefined ? { metric: flags.metric } : {}),
      ...(flags.mode !== undefined ? { mode: parseMode(flags.mode) } : {}),
    };
  }
  return options;
}

function parseMode(text: string): MetricMode {
  if (text === "min" || text === "max") return text;
  throw new CkptError("USAGE", `--mode ${JSON.stringify(text)}: expected min or max`);
}

export function parseNonNegativeInteger(text: string, option: string): number {
  if (!/^\d+$/.test(text.trim())) throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected a whole number >= 0`);
  return Number(text);
}
