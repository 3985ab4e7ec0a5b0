import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CkptError } from "../errors.js";
import { fsError } from "../formats/open.js";
import { detectShardedDir } from "../formats/sharded/index.js";
import { shardedDirOf } from "../formats/sharded/stands-for.js";

/** Extensions that name checkpoints in the wild (torch, Lightning, HF, DCP, safetensors). */
export const CHECKPOINT_EXTENSIONS = [".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".distcp"] as const;

/** Directories never descended into: our own run state, VCS data, dependency trees. */
export const SKIPPED_DIRS: ReadonlySet<string> = new Set([".ckptguard", ".git", "node_modules", "__pycache__"]);

/** One thing `verify` checks: a file, or a directory holding one sharded checkpoint (DCP, HF index + shards). */
export interface CheckpointTarget {
  path: string;
  kind: "file" | "sharded-dir";
}

/**
 * Expands the paths given on the command line: a file stays itself (whatever its name),
 * a directory becomes every checkpoint-looking file below it, sorted. Paths of sharded
 * checkpoint directories are included as the directory itself (see collectCheckpointTargets).
 */
export async function collectCheckpointPaths(paths: readonly string[]): Promise<string[]> {
  return (await collectCheckpointTargets(paths)).map((target) => target.path);
}

/**
 * Like collectCheckpointPaths, saying what each path is. A directory holding a sharded
 * checkpoint is one target, and its shards are not listed again as files; its other files
 * (an HF Trainer's optimizer.pt) and subdirectories still are. An index file, DCP
 * `.metadata` or `.distcp` shard given by name stands for its directory.
 */
export async function collectCheckpointTargets(paths: readonly string[]): Promise<CheckpointTarget[]> {
  const out: CheckpointTarget[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      throw fsError(error, path);
    }
    if (!info.isDirectory()) {
      const dir = await shardedDirOf(path, false);
      out.push(dir !== undefined ? { path: dir, kind: "sharded-dir" } : { path, kind: "file" });
      continue;
    }
    const found = await walk(path);
    if (found.length === 0) throw new CkptError("NO_CHECKPOINTS", "directory holds no checkpoint files (.pt .pth .ckpt .bin .safetensors .distcp or zip)", { file: path });
    out.push(...found);
  }
  return out;
}

async function walk(dir: string): Promise<CheckpointTarget[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw fsError(error, dir);
  }
  const out: CheckpointTarget[] = [];
  const sharded = await detectShardedDir(dir);
  if (sharded) out.push({ path: dir, kind: "sharded-dir" });
  const shardFiles = new Set(sharded?.files ?? []);
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) out.push(...(await walk(full)));
    } else if (shardFiles.has(full)) {
      continue; // verified as part of the sharded checkpoint
    } else if (entry.isFile() && (CHECKPOINT_EXTENSIONS.some((ext) => entry.name.endsWith(ext)) || (await hasZipMagic(full)))) {
      out.push({ path: full, kind: "file" });
    }
  }
  return out;
}

/** True when the file starts with a zip local header (a torch checkpoint under any name). */
export async function hasZipMagic(path: string): Promise<boolean> {
  try {
    const handle = await open(path, "r");
    try {
      const head = Buffer.alloc(4);
      const { bytesRead } = await handle.read(head, 0, 4, 0);
      return bytesRead === 4 && head.readUInt32LE(0) === 0x04034b50;
    } finally {
      await handle.close();
    }
  } catch {
    return false; // unreadable non-checkpoint-named files are not ours to report
  }
}
