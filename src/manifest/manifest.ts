import { readFile } from "node:fs/promises";
import { defaultMetric, defaultMode, rankByMetric, type MetricMode } from "../catalog/best.js";
import { qualifies } from "../catalog/catalog.js";
import type { CatalogEntry } from "../catalog/entry.js";
import { orderEntries } from "../catalog/order.js";
import { writeJsonAtomic } from "./atomic-write.js";

/**
 * `manifest.json`: what a supervised run directory remembers about its checkpoints —
 * every one seen with its verdict and training position, which is the latest valid and
 * which the best, and every invalid file ever seen with why. Written atomically after
 * each change, so a reader (or a supervisor killed mid-write) never sees half of it.
 */

export const MANIFEST_VERSION = 1;

/** A catalog entry as verified by the supervisor, with when it was seen (and its hash with `--hash`). */
export type ManifestCheckpoint = Pick<CatalogEntry, "path" | "kind" | "size" | "verdict" | "problems" | "step" | "epoch" | "loss" | "metrics"> & {
  /** SHA-256 of the file's bytes (only with `run --hash`: it costs ~0.8 ms of CPU per MB). */
  sha256?: string;
  /** mtime in milliseconds since the epoch, as stat(2) gave it. */
  mtime: number;
  /** When the supervisor verified this version of the file (ISO 8601). */
  seen_at: string;
};

/** An invalid file as it was when verified; kept after the file is replaced or removed. */
export type ManifestFailure = Pick<ManifestCheckpoint, "path" | "size" | "mtime" | "verdict" | "problems" | "seen_at">;

export interface Manifest {
  version: typeof MANIFEST_VERSION;
  dir: string;
  /** Files present now, oldest first (training order). */
  checkpoints: ManifestCheckpoint[];
  latest_valid: string | null;
  best: string | null;
  /** What `best` is ranked by, once any checkpoint records a metric. */
  metric: { name: string; mode: MetricMode } | null;
  failed: ManifestFailure[];
  updated_at: string;
}

export function emptyManifest(dir: string): Manifest {
  return { version: MANIFEST_VERSION, dir, checkpoints: [], latest_valid: null, best: null, metric: null, failed: [], updated_at: new Date(0).toISOString() };
}

/** The manifest at `path`; undefined when absent or not a manifest this version reads. */
export async function readManifest(path: string): Promise<Manifest | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch {
    return undefined;
  }
  return parseManifest(parsed);
}

/** A parsed manifest.json checked for this version's shape (the dashboard reads the bytes itself). */
export function parseManifest(parsed: unknown): Manifest | undefined {
  const m = parsed as Partial<Manifest> | null;
  if (m === null || typeof m !== "object" || m.version !== MANIFEST_VERSION || !Array.isArray(m.checkpoints) || !Array.isArray(m.failed)) return undefined;
  return { ...emptyManifest(String(m.dir ?? "")), ...m } as Manifest;
}

export async function writeManifest(path: string, manifest: Manifest, now = Date.now()): Promise<void> {
  manifest.updated_at = new Date(now).toISOString();
  await writeJsonAtomic(path, manifest);
}

/** Records a verified file (replacing what was known of its path); an invalid one also joins `failed`. */
export function recordCheckpoint(manifest: Manifest, entry: CatalogEntry, seenAt: number, sha256?: string): ManifestCheckpoint {
  const record: ManifestCheckpoint = {
    path: entry.path, kind: entry.kind, size: entry.size, mtime: entry.mtimeMs, verdict: entry.verdict, problems: entry.problems,
    metrics: entry.metrics, seen_at: new Date(seenAt).toISOString(),
    ...(sha256 !== undefined ? { sha256 } : {}),
    ...(entry.step !== undefined ? { step: entry.step } : {}),
    ...(entry.epoch !== undefined ? { epoch: entry.epoch } : {}),
    ...(entry.loss !== undefined ? { loss: entry.loss } : {}),
  };
  manifest.checkpoints = manifest.checkpoints.filter((c) => c.path !== entry.path);
  manifest.checkpoints.push(record);
  const seenBefore = manifest.failed.some((f) => f.path === record.path && f.size === record.size && f.mtime === record.mtime);
  if (record.verdict !== "valid" && !seenBefore) {
    const { path, size, mtime, verdict, problems, seen_at } = record;
    manifest.failed.push({ path, size, mtime, verdict, problems, seen_at });
  }
  return record;
}

/** Drops a file that no longer exists (deleted by retention or by hand). */
export function forgetCheckpoint(manifest: Manifest, path: string): void {
  manifest.checkpoints = manifest.checkpoints.filter((c) => c.path !== path);
}

/**
 * Re-sorts the checkpoints oldest first (the catalog's order: step, epoch, name numbers,
 * mtime) and picks the latest valid and the best by `metric` (default: the catalog's
 * default metric), as `ckptguard latest` would.
 */
export function refreshSelections(manifest: Manifest, metric?: { name?: string; mode?: MetricMode }): void {
  const ordered = orderEntries(manifest.checkpoints.map(asCatalogEntry), manifest.dir);
  manifest.checkpoints = ordered.map((e) => e.record);
  manifest.latest_valid = [...ordered].reverse().find(qualifies)?.path ?? null;
  const name = metric?.name ?? defaultMetric(ordered);
  if (name === undefined) {
    manifest.metric = null;
    manifest.best = null;
    return;
  }
  const mode = metric?.mode ?? defaultMode(name);
  manifest.metric = { name, mode };
  manifest.best = rankByMetric(ordered, name, mode).find(qualifies)?.path ?? null;
}

/** A manifest record seen as a catalog entry, to reuse the catalog's ordering and ranking. */
export function asCatalogEntry(record: ManifestCheckpoint): CatalogEntry & { record: ManifestCheckpoint } {
  const { path, kind, size, mtime, verdict, problems, step, epoch, loss, metrics } = record;
  return {
    path, kind, size, mtimeMs: mtime, verdict, problems, metrics, inProgress: false, check: "full", record,
    ...(step !== undefined ? { step } : {}), ...(epoch !== undefined ? { epoch } : {}), ...(loss !== undefined ? { loss } : {}),
  };
}

export function findRecord(manifest: Manifest, path: string | null): ManifestCheckpoint | undefined {
  return path === null ? undefined : manifest.checkpoints.find((c) => c.path === path);
}
