import { qualifies } from "../catalog/catalog.js";
import type { CatalogEntry } from "../catalog/entry.js";
import { findLatestCheckpoint } from "../catalog/latest.js";
import { asCatalogEntry, type Manifest } from "../manifest/manifest.js";

/**
 * Which checkpoint a (re)launch resumes from: the newest that is valid with every byte
 * CRC-checked and complete as a training checkpoint, as `ckptguard latest` picks it. A
 * file listed as failed is never chosen: it fails that same check.
 */
export interface ResumeChoice {
  entry: CatalogEntry | undefined;
  /** Why a newer checkpoint was passed over, for the log. */
  note?: string;
}

/**
 * With `since` (a `--fresh` run), checkpoints older than the run are not this run's:
 * the newest valid one the run itself wrote is used instead, from the manifest.
 */
export async function chooseResume(dir: string, manifest: Manifest, since?: number): Promise<ResumeChoice> {
  const latest = await findLatestCheckpoint(dir);
  if (since === undefined || latest === undefined || latest.mtimeMs >= since) return { entry: latest };
  const own = manifest.checkpoints.map(asCatalogEntry).filter((e) => qualifies(e) && e.mtimeMs >= since);
  return { entry: own[own.length - 1], note: `--fresh: ${latest.path} predates this run and is not resumed from` };
}

/** "Progress: 3/10 epochs complete, resuming from: ckpt/ckpt_epoch_0003.pt" (X from the checkpoint's content). */
export function resumeLine(entry: CatalogEntry, totals: { epochs?: number; steps?: number }): string {
  const of = (total: number | undefined): string => `/${total ?? "?"}`;
  const progress = entry.epoch !== undefined
    ? `${entry.epoch}${of(totals.epochs)} epochs complete`
    : entry.step !== undefined ? `${entry.step}${of(totals.steps)} steps complete` : "position unknown";
  return `Progress: ${progress}, resuming from: ${entry.path}`;
}
