import { stat } from "node:fs/promises";
import { rankByMetric, type BestBy, type MetricMode } from "./best.js";
import { listCheckpoints, qualifies, type Catalog, type CatalogOptions } from "./catalog.js";
import { readCatalogEntry, type CatalogEntry } from "./entry.js";
import type { Expectation } from "../verify/expectations.js";
import { qualificationRules } from "./rules.js";
import type { CheckpointCandidate } from "./scan.js";

/**
 * The checkpoint a training script should resume from: the newest (or the best by a
 * metric) that is valid with every byte CRC-checked, complete, meets the expectations,
 * and is not being written. Listing and ordering read structure only; the full check
 * runs on candidates from the top down until one passes, so a healthy run costs one
 * full verify.
 */

export interface SelectOptions extends Omit<CatalogOptions, "check" | "onRead" | "best"> {
  best?: BestBy;
}

export interface Selection {
  chosen?: CatalogEntry;
  /** Candidates passed over on the way down, newest (or best) first, each with its verdict and problems. */
  skipped: CatalogEntry[];
  catalog: Catalog;
  /** Why nothing was chosen, in one sentence, when `chosen` is undefined. */
  reason?: string;
}

/** Same as findLatestCheckpoint, with the catalog's knobs and what was skipped and why. */
export async function selectCheckpoint(dir: string, options: SelectOptions = {}): Promise<Selection> {
  const catalog = await listCheckpoints(dir, { ...options, check: "structure" });
  const rules = qualificationRules(options);
  const ranking = options.best ? bestOrder(catalog, options.best) : { order: [...catalog.entries].reverse() };
  if (ranking.reason !== undefined) return { skipped: [], catalog, reason: ranking.reason };
  const order = ranking.order;
  const skipped: CatalogEntry[] = [];
  for (const entry of order) {
    if (!qualifies(entry)) {
      skipped.push(entry);
      continue;
    }
    const candidate = catalog.candidates[catalog.entries.indexOf(entry)]!;
    const full = (await readCatalogEntry(candidate, { check: "full", ...rules, ...(options.allowGlobals ? { verify: { allowGlobals: options.allowGlobals } } : {}) })).entry;
    full.metrics = entry.metrics; // keep what a metrics file added
    if (qualifies(full) && (await unchangedSince(candidate))) return { chosen: full, skipped, catalog };
    skipped.push(full);
  }
  const reason = catalog.entries.length === 0
    ? `no checkpoints in ${dir}`
    : `none of the ${catalog.entries.length} checkpoints in ${dir} is valid, complete and finished writing`;
  return { skipped, catalog, reason };
}

/**
 * The newest checkpoint under `dir` that is valid (full CRC) and complete, or the best by
 * `best.metric`; undefined when none qualifies.
 */
export async function findLatestCheckpoint(
  dir: string,
  options?: { expect?: Expectation[]; requireComplete?: boolean; best?: { metric: string; mode: "min" | "max" } },
): Promise<CatalogEntry | undefined> {
  return (await selectCheckpoint(dir, options ?? {})).chosen;
}

/** Every entry recording the metric, best first; a run that records none is an error worth naming. */
function bestOrder(catalog: Catalog, best: BestBy): { order: CatalogEntry[]; reason?: string } {
  const metric = best.metric ?? catalog.metric?.name;
  if (metric === undefined) return { order: [], reason: `no checkpoint in ${catalog.dir} records a metric to rank by; name one with --metric` };
  const mode: MetricMode = best.mode ?? catalog.metric?.mode ?? "min";
  const ranked = rankByMetric(catalog.entries, metric, mode);
  if (ranked.length === 0) {
    const known = [...new Set(catalog.entries.flatMap((e) => Object.keys(e.metrics)))].sort();
    return { order: [], reason: `no checkpoint in ${catalog.dir} records metric ${metric} (recorded: ${known.join(", ") || "none"})` };
  }
  return { order: ranked };
}

/** A file that changed while we verified it was being written over: not safe to hand out. */
async function unchangedSince(candidate: CheckpointCandidate): Promise<boolean> {
  if (candidate.kind !== "file") return true;
  const info = await stat(candidate.path).catch(() => undefined);
  return info !== undefined && info.size === candidate.size && info.mtimeMs === candidate.mtimeMs;
}
