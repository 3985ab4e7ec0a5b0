import type { Manifest } from "../manifest/manifest.js";
import { parseProgressLine } from "../run/progress-feed.js";
import type { KnownRun } from "./runs.js";
import { readStateFile } from "./state-file.js";

/**
 * The loss/metric series for the chart: what the training script appended to
 * `CKPTGUARD_PROGRESS` (progress.jsonl, dense) and what each checkpoint records (sparse).
 * The x axis is the step when any point has one, else the epoch, else the point's index.
 */

export interface MetricSeries {
  name: string;
  source: "feed" | "checkpoints";
  /** [x, y] pairs in x order. */
  points: Array<[number, number]>;
}

export interface RunMetrics {
  x: "step" | "epoch" | "index";
  series: MetricSeries[];
}

/** The feed is read from its end, this much at most. */
const FEED_TAIL_BYTES = 2 * 1024 * 1024;
/** Points per series: the chart shows a shape, not every step of a long run. */
const MAX_POINTS = 2_000;
/** Keys (or their last dotted part) that are positions, totals or times, not metrics. */
const NOT_METRICS = /^(epoch|step|global_step|iter_num|total_.*|.*_total|max_(epochs|steps)|num_(epochs|steps)|time|timestamp|seed)$/;
/** A checkpoint's numbers under these are its configuration (the catalog collects every numeric scalar). */
const CONFIG_PREFIX = /^(config|args|hparams|hyper_parameters|model_args|hyperparameters|cfg)\./;

function isMetricKey(key: string): boolean {
  return !NOT_METRICS.test(key.split(".").pop() ?? key) && !CONFIG_PREFIX.test(key);
}

interface Point {
  step?: number;
  epoch?: number;
  values: Record<string, number>;
}

export async function readRunMetrics(run: KnownRun, manifest: Manifest | undefined): Promise<RunMetrics> {
  const feed = await readFeedPoints(run);
  const saved: Point[] = (manifest?.checkpoints ?? []).filter((c) => c.verdict === "valid").map((c) => ({
    ...(c.step !== undefined ? { step: c.step } : {}), ...(c.epoch !== undefined ? { epoch: c.epoch } : {}),
    values: finiteOnly({ ...(c.loss !== undefined ? { loss: c.loss } : {}), ...c.metrics }),
  }));
  const all = [...feed, ...saved];
  const x = all.some((p) => p.step !== undefined) ? "step" : all.some((p) => p.epoch !== undefined) ? "epoch" : "index";
  if (x === "step") placeByEpoch(saved, feed);
  return { x, series: [...toSeries(feed, "feed", x), ...toSeries(saved, "checkpoints", x)] };
}

/**
 * A checkpoint that records its epoch but not its step goes where the feed says that epoch
 * ended (the last step reported with it), so both sources share the step axis.
 */
function placeByEpoch(saved: Point[], feed: readonly Point[]): void {
  const stepAtEpoch = new Map<number, number>();
  for (const p of feed) if (p.epoch !== undefined && p.step !== undefined) stepAtEpoch.set(p.epoch, Math.max(p.step, stepAtEpoch.get(p.epoch) ?? -Infinity));
  for (const p of saved) {
    const step = p.step === undefined && p.epoch !== undefined ? stepAtEpoch.get(p.epoch) : undefined;
    if (step !== undefined) p.step = step;
  }
}

async function readFeedPoints(run: KnownRun): Promise<Point[]> {
  const file = await readStateFile(run.stateDir, "progress.jsonl", FEED_TAIL_BYTES, true);
  if (file === undefined) return [];
  const points: Point[] = [];
  for (const text of file.text.split("\n")) {
    const line = parseProgressLine(text); // a cut first line or a half-written last one fails to parse: skipped
    if (line === undefined) continue;
    const values: Record<string, number> = {};
    for (const [key, value] of Object.entries(line.values)) {
      if (typeof value === "number" && Number.isFinite(value) && isMetricKey(key)) values[key] = value;
    }
    points.push({ ...(line.step !== undefined ? { step: line.step } : {}), ...(line.epoch !== undefined ? { epoch: line.epoch } : {}), values });
  }
  return points;
}

function toSeries(points: readonly Point[], source: MetricSeries["source"], x: RunMetrics["x"]): MetricSeries[] {
  const byName = new Map<string, Array<[number, number]>>();
  points.forEach((p, index) => {
    const at = x === "index" ? index : p[x];
    if (at === undefined) return;
    for (const [name, value] of Object.entries(p.values)) {
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name)!.push([at, value]);
    }
  });
  return [...byName]
    .filter(([name, pts]) => name === "loss" || pts.length < 3 || pts.some(([, y]) => y !== pts[0]![1])) // a constant is no curve
    .map(([name, pts]) => ({ name, source, points: thin(pts.sort((a, b) => a[0] - b[0])) }));
}

/** Every k-th point (and always the last) so at most MAX_POINTS remain. */
function thin(points: Array<[number, number]>): Array<[number, number]> {
  if (points.length <= MAX_POINTS) return points;
  const every = Math.ceil(points.length / MAX_POINTS);
  return points.filter((_, i) => i % every === 0 || i === points.length - 1);
}

function finiteOnly(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).filter(([k, v]) => typeof v === "number" && Number.isFinite(v) && isMetricKey(k)));
}
