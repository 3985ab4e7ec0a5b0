import { basename, extname, relative } from "node:path";
import { problem, type Problem } from "../verify/report.js";
import type { CatalogEntry } from "./entry.js";
import { compareByName } from "./order.js";

/**
 * The run's checkpoints read as one series: positions strictly increase in the order the
 * files were written, no gap wider than the usual save interval, weights change from one
 * save to the next, and where the loss went.
 */

export interface SeriesItem {
  entry: CatalogEntry;
  /** weightsFingerprint of the entry's model, when it could be read. */
  fingerprint?: string;
}

export interface LossTrend {
  first: number;
  last: number;
  min: number;
  points: number;
  trend: "decreasing" | "increasing" | "flat";
}

export interface SequenceFacts {
  /** What positions are counted in: the step when every checkpoint records one, else the epoch. */
  unit?: "step" | "epoch";
  /** The save interval: given, or the distance between adjacent checkpoints that occurs at least twice. */
  interval?: number;
  loss?: LossTrend;
  problems: Problem[];
}

/** `best.pt`, `last.ckpt`, `model_final.pth`: copies of a series member, not members themselves. */
export function isAliasName(path: string): boolean {
  return /(^|[^a-z])(best|last|latest|final)([^a-z]|$)/i.test(basename(path, extname(path)));
}

/** `expectedInterval`: the save interval in the series' unit, when known (else the usual distance is used). */
export function sequenceFacts(items: readonly SeriesItem[], root: string, expectedInterval?: number): SequenceFacts {
  const facts: SequenceFacts = { problems: [] };
  const rel = (e: CatalogEntry) => relative(root, e.path) || basename(e.path);
  const withStep = items.filter((i) => i.entry.step !== undefined);
  const withEpoch = items.filter((i) => i.entry.epoch !== undefined);
  const unit = withStep.length > 0 && withStep.length >= withEpoch.length ? "step" : withEpoch.length > 0 ? "epoch" : undefined;
  if (unit === undefined) return facts;
  facts.unit = unit;
  const positioned = unit === "step" ? withStep : withEpoch;
  const pos = (i: SeriesItem): number => (unit === "step" ? i.entry.step! : i.entry.epoch!);

  const written = [...positioned].sort((a, b) => compareByName(a.entry, b.entry, root));
  for (let k = 1; k < written.length; k++) {
    const [prev, next] = [written[k - 1]!, written[k]!];
    if (pos(next) <= pos(prev)) {
      facts.problems.push(problem("STEP_NOT_INCREASING", `${rel(next.entry)} records ${unit} ${pos(next)} but was written after ${rel(prev.entry)} (${unit} ${pos(prev)})`));
    }
  }

  const byPosition = [...positioned].sort((a, b) => pos(a) - pos(b));
  const distances = byPosition.slice(1).map((item, k) => pos(item) - pos(byPosition[k]!)).filter((d) => d > 0);
  const interval = expectedInterval ?? regularInterval(distances);
  if (interval !== undefined) {
    facts.interval = interval;
    for (let k = 1; k < byPosition.length; k++) {
      const [prev, next] = [byPosition[k - 1]!, byPosition[k]!];
      const distance = pos(next) - pos(prev);
      if (distance > interval * (1 + 1e-9)) {
        const missing = Math.round(distance / interval) - 1;
        facts.problems.push(problem("STEP_GAP", `${unit} ${pos(prev)} (${rel(prev.entry)}) -> ${pos(next)} (${rel(next.entry)}): ${distance} apart, the usual interval is ${interval}${missing > 0 ? ` (about ${missing} checkpoint${missing === 1 ? "" : "s"} missing)` : ""}`));
      }
    }
  }

  for (let k = 1; k < byPosition.length; k++) {
    const [prev, next] = [byPosition[k - 1]!, byPosition[k]!];
    if (pos(next) !== pos(prev) && prev.fingerprint !== undefined && prev.fingerprint === next.fingerprint) {
      facts.problems.push(problem("WEIGHTS_UNCHANGED", `${rel(next.entry)} (${unit} ${pos(next)}) holds the same model weights as ${rel(prev.entry)} (${unit} ${pos(prev)})`));
    }
  }

  const losses = byPosition.map((i) => i.entry.loss).filter((l): l is number => l !== undefined && Number.isFinite(l));
  if (losses.length >= 2) {
    const first = losses[0]!;
    const last = losses[losses.length - 1]!;
    const trend = last < first ? "decreasing" : last > first ? "increasing" : "flat";
    facts.loss = { first, last, min: Math.min(...losses), points: losses.length, trend };
    if (trend === "increasing") facts.problems.push(problem("LOSS_INCREASING", `loss went from ${first} to ${last} over ${losses.length} checkpoints`));
  }
  return facts;
}

/**
 * The distance that occurs most often, when one occurs at least twice: with 5, 10, 20, 100
 * there is no regular interval to call a gap against, with 1, 1, 2, 1 there is.
 * Ties go to the smallest distance.
 */
function regularInterval(distances: readonly number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const d of distances) {
    const key = Number(d.toPrecision(12)); // float epochs (HF's 0.5, 1.0, ...) compare after rounding
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const [top] = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return top !== undefined && top[1] >= 2 ? top[0] : undefined;
}
