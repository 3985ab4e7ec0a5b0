import { rm } from "node:fs/promises";
import { rankByMetric, type MetricMode } from "../catalog/best.js";
import { qualifies } from "../catalog/catalog.js";
import { asCatalogEntry, forgetCheckpoint, type Manifest } from "../manifest/manifest.js";

/**
 * `--keep-last N` and `--keep-best N`: which old checkpoints may go. Only verified files
 * are ever considered (a file still being written or not yet checked is not in the
 * manifest), only valid ones are deleted (an invalid one is evidence, listed in
 * failed_checkpoints.txt), and the newest valid one and the best one always stay.
 */

export interface RetentionPolicy {
  keepLast?: number;
  keepBest?: number;
  /** Ranks `keepBest` (default: the manifest's metric). */
  metric?: { name: string; mode: MetricMode };
}

/** Paths to delete, oldest first. `manifest.checkpoints` must be in training order (refreshSelections). */
export function selectForDeletion(manifest: Manifest, policy: RetentionPolicy): string[] {
  if (policy.keepLast === undefined && policy.keepBest === undefined) return [];
  const valid = manifest.checkpoints.map(asCatalogEntry).filter(qualifies);
  const newest = valid[valid.length - 1];
  if (newest === undefined) return [];
  const keep = new Set<string>([newest.path]);
  if (manifest.best !== null) keep.add(manifest.best);
  if (policy.keepLast !== undefined) for (const e of valid.slice(-Math.max(1, policy.keepLast))) keep.add(e.path);
  const metric = policy.metric ?? manifest.metric ?? undefined;
  if (policy.keepBest !== undefined && metric !== undefined) {
    for (const e of rankByMetric(valid, metric.name, metric.mode).slice(0, policy.keepBest)) keep.add(e.path);
  }
  return valid.filter((e) => !keep.has(e.path)).map((e) => e.path);
}

/** Deletes what the policy lets go and forgets it in the manifest; returns the paths deleted. */
export async function applyRetention(manifest: Manifest, policy: RetentionPolicy): Promise<string[]> {
  const deleted: string[] = [];
  for (const path of selectForDeletion(manifest, policy)) {
    try {
      await rm(path, { recursive: true, force: true });
    } catch {
      continue; // still listed; the next pass tries again
    }
    forgetCheckpoint(manifest, path);
    deleted.push(path);
  }
  return deleted;
}
