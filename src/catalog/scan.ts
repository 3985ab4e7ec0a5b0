import { readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CkptError } from "../errors.js";
import { fsError } from "../formats/open.js";
import { DCP_METADATA_FILE, detectShardedDir, type ShardedLayout } from "../formats/sharded/index.js";
import { isTempName } from "../manifest/atomic-write.js";
import { CHECKPOINT_EXTENSIONS, hasZipMagic, SKIPPED_DIRS } from "../verify/collect-paths.js";

/**
 * Lists the checkpoints of a run directory without reading their content: single files
 * anywhere below it, HF Trainer `checkpoint-N/` directories as one unit each, and sharded
 * checkpoint directories (torch.distributed.checkpoint, HF index + shards) as one unit each. Whether
 * a candidate is still being written is decided here, from names and two looks at its
 * size and mtime, because that is a fact about the file system, not about the bytes.
 */

export type CandidateKind = "file" | "hf-trainer-dir" | "sharded-dir";

export interface CheckpointCandidate {
  path: string;
  kind: CandidateKind;
  /** Bytes on disk (a directory: the sum of its files). */
  size: number;
  /** Last modification (a directory: its newest file). */
  mtimeMs: number;
  /** True for a temp name or a size/mtime that changed between the two looks: never chosen. */
  inProgress: boolean;
  /** Why the candidate counts as in progress. */
  inProgressReason?: string;
}

export interface ScanOptions {
  /** Milliseconds between the two looks at each candidate's size and mtime (default 0). */
  settleMs?: number;
}

/** `checkpoint-500`, HF Trainer's per-save directory (trainer.py `PREFIX_CHECKPOINT_DIR`). */
const HF_CHECKPOINT_DIR = /^checkpoint-\d+$/;
/** Newer Trainers save into `tmp-checkpoint-N` and rename it when complete. */
const HF_TEMP_CHECKPOINT_DIR = /^tmp-checkpoint-\d+$/;

/** Every checkpoint candidate below `dir`, in path order, after both looks. */
export async function scanCheckpoints(dir: string, options: ScanOptions = {}): Promise<CheckpointCandidate[]> {
  const firstLook = await findCandidates(dir);
  return confirmSettled(firstLook, options.settleMs ?? 0);
}

/** A scan's first look: candidates, temp names marked in progress, and when the look was taken. */
export interface FirstLook {
  candidates: CheckpointCandidate[];
  at: number;
}

/** Lists the candidates and takes the first look at each. Callers may read them before the second. */
export async function findCandidates(dir: string): Promise<FirstLook> {
  const info = await statOrThrow(dir);
  if (!info.isDirectory()) throw new CkptError("NOT_A_DIRECTORY", "is a file; give the directory that holds the checkpoints", { file: dir });
  const found: Array<{ path: string; kind: CandidateKind; temp: boolean }> = [];
  await walk(dir, found);
  const at = Date.now();
  const looks = await Promise.all(found.map((f) => look(f.path, f.kind)));
  const candidates = found.map((f, i): CheckpointCandidate => {
    const candidate: CheckpointCandidate = { path: f.path, kind: f.kind, size: looks[i]!.size, mtimeMs: looks[i]!.mtimeMs, inProgress: false };
    if (f.temp) {
      const reason = f.kind === "sharded-dir" ? `${basename(f.path)} has ${DCP_METADATA_FILE}.tmp but no ${DCP_METADATA_FILE}: a save in progress or one that died` : `${basename(f.path)} is a temp name: a save in progress or one that died`;
      Object.assign(candidate, { inProgress: true, inProgressReason: reason });
    }
    return candidate;
  });
  return { candidates, at };
}

/**
 * The second look, at least `settleMs` after the first (time spent reading in between
 * counts): a candidate whose size or mtime changed is still being written.
 */
export async function confirmSettled(firstLook: FirstLook, settleMs: number): Promise<CheckpointCandidate[]> {
  const wait = firstLook.at + settleMs - Date.now();
  if (wait > 0) await sleep(wait);
  const second = await Promise.all(firstLook.candidates.map((c) => look(c.path, c.kind)));
  return firstLook.candidates.map((c, i) => {
    const now = second[i]!;
    if (c.inProgress || (now.size === c.size && now.mtimeMs === c.mtimeMs)) return c;
    return { ...c, size: now.size, mtimeMs: now.mtimeMs, inProgress: true, inProgressReason: `size or mtime changed while looking (${c.size} -> ${now.size} bytes): still being written` };
  });
}

async function walk(dir: string, out: Array<{ path: string; kind: CandidateKind; temp: boolean }>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw fsError(error, dir);
  }
  // A sharded checkpoint is one candidate: its shards are never listed one by one (other files beside them still are).
  const sharded = await detectShardedDir(dir);
  const shardFiles = new Set(sharded?.files ?? []);
  if (sharded) out.push({ path: dir, kind: "sharded-dir", temp: shardedSaveInProgress(sharded, entries.map((e) => e.name)) });
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, entry.name);
    if (shardFiles.has(full)) continue;
    if (entry.isDirectory()) {
      if (SKIPPED_DIRS.has(entry.name)) continue;
      if (HF_CHECKPOINT_DIR.test(entry.name)) out.push({ path: full, kind: "hf-trainer-dir", temp: false });
      else if (HF_TEMP_CHECKPOINT_DIR.test(entry.name)) out.push({ path: full, kind: "hf-trainer-dir", temp: true });
      else await walk(full, out);
    } else if (entry.isFile()) {
      if (isTempName(entry.name)) {
        // `.ckpt_epoch_3.pt.x1y2.tmp`, `model.pt.partial`: a checkpoint on its way in.
        if (CHECKPOINT_EXTENSIONS.some((ext) => entry.name.includes(`${ext}.`) || entry.name.endsWith(ext))) out.push({ path: full, kind: "file", temp: true });
      } else if (CHECKPOINT_EXTENSIONS.some((ext) => entry.name.endsWith(ext)) || (await hasZipMagic(full))) {
        out.push({ path: full, kind: "file", temp: false });
      }
    }
  }
}

/**
 * torch.distributed.checkpoint writes `.metadata.tmp` after every rank's shards and renames it
 * to `.metadata` (filesystem.py `finish`): while only the temp name exists the save is under way.
 */
function shardedSaveInProgress(layout: ShardedLayout, names: readonly string[]): boolean {
  return layout.kind === "dcp" && !names.includes(DCP_METADATA_FILE) && names.includes(`${DCP_METADATA_FILE}.tmp`);
}

/** Size and mtime; a directory sums its files and takes the newest mtime (a file still being added changes both). */
async function look(path: string, kind: CandidateKind): Promise<{ size: number; mtimeMs: number }> {
  if (kind === "file") {
    const info = await stat(path).catch(() => undefined);
    return info ? { size: info.size, mtimeMs: info.mtimeMs } : { size: -1, mtimeMs: -1 };
  }
  let size = 0;
  let mtimeMs = 0;
  const names = await readdir(path).catch(() => [] as string[]);
  for (const name of names) {
    const info = await stat(join(path, name)).catch(() => undefined);
    if (!info?.isFile()) continue;
    size += info.size;
    mtimeMs = Math.max(mtimeMs, info.mtimeMs);
  }
  return { size, mtimeMs };
}

async function statOrThrow(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    throw fsError(error, path);
  }
}
