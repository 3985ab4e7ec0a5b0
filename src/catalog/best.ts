import type { CatalogEntry } from "./entry.js";

/**
 * Which checkpoint is best by a metric. The metric is looked up by its exact name and
 * then as the last part of a dotted one (`val_loss` finds `metrics.val_loss`).
 */

export type MetricMode = "min" | "max";

export interface BestBy {
  /** Default: the first of DEFAULT_METRICS that any entry records. */
  metric?: string;
  /** Default: DEFAULT_MODE of the metric's name. */
  mode?: MetricMode;
}

/** What `--best` ranks by when no metric is named, in order of preference. */
export const DEFAULT_METRICS = ["val_loss", "eval_loss", "valid_loss", "best_val_loss", "loss", "train_loss"] as const;

/** The value of `metric` an entry records, if finite (a NaN loss is never best). */
export function metricValue(entry: CatalogEntry, metric: string): number | undefined {
  const exact = entry.metrics[metric];
  const value = exact ?? Object.entries(entry.metrics).find(([key]) => key.endsWith(`.${metric}`))?.[1];
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** The first default metric any entry records, else undefined. */
export function defaultMetric(entries: readonly CatalogEntry[]): string | undefined {
  return DEFAULT_METRICS.find((metric) => entries.some((e) => metricValue(e, metric) !== undefined));
}

/** Accuracy-like names are maximised; losses, errors and everything else minimised. */
export function defaultMode(metric: string): MetricMode {
  return /loss|err|perplexity|ppl|wer|cer|mse|mae/i.test(metric) ? "min"
    : /acc|f1|auc|bleu|rouge|precision|recall|reward|score|map/i.test(metric) ? "max" : "min";
}

/** Entries that record the metric, best first; ties go to the newer (later in `ordered`). */
export function rankByMetric(ordered: readonly CatalogEntry[], metric: string, mode: MetricMode): CatalogEntry[] {
  const sign = mode === "min" ? 1 : -1;
  return ordered
    .map((entry, index) => ({ entry, index, value: metricValue(entry, metric) }))
    .filter((x): x is { entry: CatalogEntry; index: number; value: number } => x.value !== undefined)
    .sort((a, b) => sign * (a.value - b.value) || b.index - a.index)
    .map((x) => x.entry);
}
