import { defaultMetric, defaultMode, rankByMetric, type BestBy, type MetricMode } from "./best.js";
import { readCatalogEntry, type CatalogEntry, type EntryRead } from "./entry.js";
import { applyMetricsRows, findMetricsFile, readMetricsFile } from "./metrics-file.js";
import { orderEntries } from "./order.js";
import { qualificationRules, type QualificationOptions } from "./rules.js";
import { confirmSettled, findCandidates, type CheckpointCandidate } from "./scan.js";
import { mapLimit } from "../map-limit.js";

/**
 * A run directory's checkpoints read and ordered: what `ls` prints and what `latest`
 * and `check-run` start from.
 */

export interface CatalogOptions extends QualificationOptions {
  /** `structure` (default): read each file's structure, no CRC pass; `full`: verify every byte. */
  check?: "structure" | "full";
  /** Milliseconds between two looks at each file's size and mtime (default 0). */
  settleMs?: number;
  best?: BestBy;
  /** Metrics logged beside the checkpoints (default: a METRICS_FILE_NAMES file in `dir`). */
  metricsFile?: string;
  allowGlobals?: ReadonlySet<string>;
  /** Sees each file's models while they are in memory (check-run fingerprints weights here). */
  onRead?: (read: EntryRead) => void | Promise<void>;
}

export interface Catalog {
  dir: string;
  check: "structure" | "full";
  /** Oldest first (see order.ts). */
  entries: CatalogEntry[];
  /** Newest entry that qualifies (valid, complete, not in progress), by this catalog's check. */
  latest?: CatalogEntry;
  /** Best qualifying entry by `metric`. */
  best?: CatalogEntry;
  metric?: { name: string; mode: MetricMode };
  metricsFile?: string;
  /** Candidates as scanned, in `entries` order (to re-read one with a full check). */
  candidates: CheckpointCandidate[];
}

/**
 * Files read at once. A structure read is a few small reads per file, so several in flight hide
 * their latency; a full check streams whole files (and splits big ones over worker threads itself).
 */
const READ_CONCURRENCY = { structure: 8, full: 2 } as const;

export async function listCheckpoints(dir: string, options: CatalogOptions = {}): Promise<Catalog> {
  const check = options.check ?? "structure";
  const firstLook = await findCandidates(dir);
  const readOptions = { check, ...qualificationRules(options), ...(options.allowGlobals ? { verify: { allowGlobals: options.allowGlobals } } : {}) };
  const reads = await mapLimit(firstLook.candidates, READ_CONCURRENCY[check], (candidate) => readCatalogEntry(candidate, readOptions));
  // The second look comes after the reads, so the time spent reading widens the window a save is caught in.
  const candidates = await confirmSettled(firstLook, options.settleMs ?? 0);
  const entries: CatalogEntry[] = [];
  for (const [i, candidate] of candidates.entries()) {
    const read = candidate.inProgress === reads[i]!.entry.inProgress ? reads[i]! : await readCatalogEntry(candidate, readOptions);
    await options.onRead?.(read);
    entries.push(read.entry);
  }
  const metricsFile = options.metricsFile ?? (await findMetricsFile(dir));
  if (metricsFile !== undefined) applyMetricsRows(entries, await readMetricsFile(metricsFile), dir);

  const ordered = orderEntries(entries, dir);
  const byPath = new Map(candidates.map((c) => [c.path, c]));
  const catalog: Catalog = { dir, check, entries: ordered, candidates: ordered.map((e) => byPath.get(e.path)!) };
  if (metricsFile !== undefined) catalog.metricsFile = metricsFile;
  const latest = [...ordered].reverse().find(qualifies);
  if (latest) catalog.latest = latest;
  const metric = options.best?.metric ?? defaultMetric(ordered);
  if (metric !== undefined) {
    const mode = options.best?.mode ?? defaultMode(metric);
    catalog.metric = { name: metric, mode };
    const best = rankByMetric(ordered, metric, mode).find(qualifies);
    if (best) catalog.best = best;
  }
  return catalog;
}

/** Can be resumed from: valid by every rule that ran, and not being written. */
export function qualifies(entry: CatalogEntry): boolean {
  return entry.verdict === "valid" && !entry.inProgress;
}
