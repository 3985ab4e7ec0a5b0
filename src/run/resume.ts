import { stat } from "node:fs/promises";
import { qualifies } from "../catalog/catalog.js";
import { readCatalogEntry, type CatalogEntry } from "../catalog/entry.js";
import { findLatestCheckpoint } from "../catalog/latest.js";
import { qualificationRules } from "../catalog/rules.js";
import { asCatalogEntry, type Manifest } from "../manifest/manifest.js";
import { detectShardedDir } from "../formats/sharded/index.js";

/**
 * Which checkpoint a (re)launch resumes from: the newest that is valid with every byte
 * CRC-checked and complete as a training checkpoint, as `ckptguard latest` picks it. A
 * file listed as failed is never chosen: it fails that same check.
 */
export interface ResumeChoice {
  entry: CatalogEntry | undefined;
  /** Why a newer checkpoint was passed over, for the log. */
  note?: string;
  /** `--force-resume --skip-validation`: the path resumed from without any check (`entry` is undefined). */
  unverified?: string;
  /** `--force-resume`: why the named checkpoint cannot be resumed from; the run stops. */
  refusal?: string;
}

/**
 * With `since` (a `--fresh` or `--force-resume` run, named by `flag`), checkpoints older than
 * the run are not this run's: the newest valid one the run itself wrote is used instead,
 * from the manifest.
 */
export async function chooseResume(dir: string, manifest: Manifest, since?: number, flag = "--fresh"): Promise<ResumeChoice> {
  const latest = await findLatestCheckpoint(dir);
  if (since === undefined || latest === undefined || latest.mtimeMs >= since) return { entry: latest };
  const own = manifest.checkpoints.map(asCatalogEntry).filter((e) => qualifies(e) && e.mtimeMs >= since);
  return { entry: own[own.length - 1], note: `${flag}: ${latest.path} predates this run and is not resumed from` };
}

/**
 * `--force-resume PATH`: the named checkpoint (a file, an HF `checkpoint-N/` directory or a
 * sharded checkpoint directory),
 * whatever newer ones exist, after the check every resume passes (every byte CRC-checked,
 * NaN/Inf-free, complete as a training checkpoint); `skipValidation` skips that check, but a
 * path that does not exist is refused all the same.
 */
export async function chooseForcedResume(path: string, skipValidation: boolean): Promise<ResumeChoice> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return { entry: undefined, refusal: `--force-resume ${path}: no such file or directory` };
  if (skipValidation) return { entry: undefined, unverified: path };
  const kind = !info.isDirectory() ? "file" as const : (await detectShardedDir(path)) ? "sharded-dir" as const : "hf-trainer-dir" as const;
  const candidate = { path, kind, size: info.size, mtimeMs: info.mtimeMs, inProgress: false };
  const { entry } = await readCatalogEntry(candidate, { check: "full", ...qualificationRules({}) });
  if (qualifies(entry)) return { entry, note: `--force-resume: resuming from ${path}, verified, whatever newer checkpoints exist` };
  const first = entry.problems.find((p) => p.severity === "error") ?? entry.problems[0];
  return {
    entry: undefined,
    refusal: `--force-resume ${path} is ${entry.verdict}${first ? ` (${first.code}: ${first.message})` : ""}; add --skip-validation to resume from it anyway`,
  };
}

/** "Progress: 3/10 epochs complete, resuming from: ckpt/ckpt_epoch_0003.pt" (X from the checkpoint's content). */
export function resumeLine(entry: CatalogEntry, totals: { epochs?: number; steps?: number }): string {
  const of = (total: number | undefined): string => `/${total ?? "?"}`;
  const progress = entry.epoch !== undefined
    ? `${entry.epoch}${of(totals.epochs)} epochs complete`
    : entry.step !== undefined ? `${entry.step}${of(totals.steps)} steps complete` : "position unknown";
  return `Progress: ${progress}, resuming from: ${entry.path}`;
}
