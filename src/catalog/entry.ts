import { basename } from "node:path";
import { detectHfTrainerDir, type HfTrainerDir } from "../formats/hf-trainer.js";
import { detectLayout } from "../formats/layout.js";
import { fsError } from "../formats/open.js";
import type { CheckpointModel, PickleValue } from "../formats/model.js";
import { childrenOf } from "../formats/tree.js";
import type { Verdict } from "../verify/codes.js";
import { problem, verdictOf, type Problem } from "../verify/report.js";
import { verifyShardedDir } from "../verify/sharded/index.js";
import { verifyFile, type Rule, type VerifyOptions } from "../verify/verify-file.js";
import type { DirRule } from "./rules.js";
import type { CandidateKind, CheckpointCandidate } from "./scan.js";

/**
 * One row of a run directory's catalog: a checkpoint file, an HF Trainer directory or a
 * sharded checkpoint directory,
 * its verdict, and the training position and metrics its content records.
 */
export interface CatalogEntry {
  path: string;
  kind: CandidateKind;
  size: number;
  mtimeMs: number;
  verdict: Verdict;
  problems: Problem[];
  step?: number;
  epoch?: number;
  loss?: number;
  /** Numbers the checkpoint records (top-level scalars, `metrics.*`, HF eval logs) and any metrics file adds. */
  metrics: Record<string, number>;
  /** A temp name or a file that changed while we looked: never chosen, never read. */
  inProgress: boolean;
  /** What the verdict rests on: `structure` (no CRC pass, fast) or `full` (CRC of every byte, NaN/Inf scan of every float tensor). */
  check: "structure" | "full";
}

export interface EntryReadOptions {
  check: "structure" | "full";
  /** Content rules run on each single-file checkpoint (completeness, expectations); integrity rules always run. */
  rules?: readonly Rule[];
  /** Content rules run on the model weights file of an HF Trainer directory. */
  modelRules?: readonly Rule[];
  /** Rules run on an HF Trainer directory as a whole (which files it holds). */
  dirRules?: readonly DirRule[];
  verify?: Pick<VerifyOptions, "allowGlobals">;
}

/** The entry plus the models read for it (one per file; none when unreadable or in progress). */
export interface EntryRead {
  entry: CatalogEntry;
  models: CheckpointModel[];
  hf?: HfTrainerDir;
}

/** Reads and checks one candidate. Never throws for bad content: the entry reports it. */
export async function readCatalogEntry(candidate: CheckpointCandidate, options: EntryReadOptions): Promise<EntryRead> {
  const base = { path: candidate.path, kind: candidate.kind, size: candidate.size, mtimeMs: candidate.mtimeMs, inProgress: candidate.inProgress, check: options.check, metrics: {} };
  if (candidate.inProgress) {
    const problems = [problem("IN_PROGRESS", candidate.inProgressReason ?? "still being written")];
    return { entry: { ...base, verdict: verdictOf(problems), problems }, models: [] };
  }
  if (candidate.kind === "sharded-dir") return readShardedEntry(base, options);
  return candidate.kind === "file" ? readFileEntry(base, options) : readHfEntry(base, options);
}

type EntryBase = Omit<CatalogEntry, "verdict" | "problems">;

async function readFileEntry(base: EntryBase, options: EntryReadOptions): Promise<EntryRead> {
  const { report, model } = await verifyFile(base.path, { ...options.verify, ...fullCheck(options.check) }, options.rules ?? []);
  const entry: CatalogEntry = { ...base, verdict: report.verdict, problems: report.problems };
  if (model) {
    const layout = detectLayout(model);
    assignPosition(entry, layout);
    entry.metrics = scalarMetrics(model.root);
  }
  return { entry, models: model ? [model] : [] };
}

/** A sharded checkpoint (DCP, HF index + shards) read as one: one verdict, its problems naming the shard. */
async function readShardedEntry(base: EntryBase, options: EntryReadOptions): Promise<EntryRead> {
  const { report, model } = await verifyShardedDir(base.path, { ...options.verify, ...fullCheck(options.check) }, options.rules ?? []);
  const entry: CatalogEntry = { ...base, verdict: report.verdict, problems: report.problems };
  if (model) {
    assignPosition(entry, detectLayout(model));
    entry.metrics = scalarMetrics(model.root);
  }
  return { entry, models: model ? [model] : [] };
}

async function readHfEntry(base: EntryBase, options: EntryReadOptions): Promise<EntryRead> {
  let hf: HfTrainerDir | undefined;
  try {
    hf = await detectHfTrainerDir(base.path);
  } catch (error) {
    // Retention may delete a checkpoint directory between the scan and this read.
    const failure = fsError(error, base.path);
    const problems = [problem(failure.code, failure.message)];
    return { entry: { ...base, verdict: verdictOf(problems), problems }, models: [] };
  }
  if (!hf) {
    const problems = [problem("PART_MISSING", `${basename(base.path)} holds neither a model file nor trainer_state.json`)];
    return { entry: { ...base, verdict: verdictOf(problems), problems }, models: [] };
  }
  const problems: Problem[] = (options.dirRules ?? []).flatMap((rule) => rule(hf));
  if (hf.trainerStateError !== undefined) problems.push(problem("PART_MISSING", `trainer_state.json: ${hf.trainerStateError}`));
  const models: CheckpointModel[] = [];
  // The weights and the optimizer are what a resume loads; training_args.bin pickles a
  // TrainingArguments dataclass (an unsafe global by design) and is left to `verify`.
  for (const part of ["model", "optimizer", "scheduler"] as const) {
    const file = hf.files[part];
    if (file === undefined || file.endsWith(".json")) continue;
    const rules = part === "model" ? options.modelRules ?? [] : [];
    const { report, model } = await verifyFile(file, { ...options.verify, ...fullCheck(options.check) }, rules);
    problems.push(...report.problems.map((p) => ({ ...p, message: `${basename(file)}: ${p.message}` })));
    if (model) models.push(model);
  }
  const entry: CatalogEntry = { ...base, verdict: verdictOf(problems), problems };
  assignPosition(entry, hf.layout);
  entry.metrics = trainerStateMetrics(hf);
  return { entry, models, hf };
}

/** `full` is what resuming needs: every byte CRC-checked and every float tensor free of NaN/Inf. */
function fullCheck(check: EntryReadOptions["check"]): { checkCrc: boolean; deep: boolean } {
  return { checkCrc: check === "full", deep: check === "full" };
}

function assignPosition(entry: CatalogEntry, position: { step?: number; epoch?: number; loss?: number }): void {
  if (position.step !== undefined) entry.step = position.step;
  if (position.epoch !== undefined) entry.epoch = position.epoch;
  if (position.loss !== undefined) entry.loss = position.loss;
}

/** Top-level numbers (`loss`, `val_loss`, `best_val_loss`, `epoch`) and those one dict down (`metrics.val_acc`). */
export function scalarMetrics(root: PickleValue): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const [key, value] of childrenOf(root) ?? []) {
    const n = asNumber(value);
    if (n !== undefined) {
      metrics[key] = n;
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value) || value.kind !== "dict") continue;
    for (const [sub, inner] of childrenOf(value) ?? []) {
      const m = asNumber(inner);
      if (m !== undefined) metrics[`${key}.${sub}`] = m;
    }
  }
  return metrics;
}

function asNumber(value: PickleValue): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return undefined;
}

/** HF logs: the numbers logged at the checkpoint's step (`loss`, `eval_loss`, ...), plus `best_metric`. */
function trainerStateMetrics(hf: HfTrainerDir): Record<string, number> {
  const metrics: Record<string, number> = {};
  const state = hf.trainerState;
  if (!state) return metrics;
  for (const log of state.log_history) {
    if (log.step !== state.global_step) continue;
    for (const [key, value] of Object.entries(log)) if (typeof value === "number") metrics[key] = value;
  }
  if (typeof state.best_metric === "number") metrics.best_metric = state.best_metric;
  if (state.global_step !== undefined) metrics.global_step = state.global_step;
  if (state.epoch !== undefined) metrics.epoch = state.epoch;
  return metrics;
}
