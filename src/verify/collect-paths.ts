import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CkptError } from "../errors.js";
import { fsError } from "../formats/open.js";

/** Extensions that name checkpoints in the wild (torch, Lightning, HF, DCP, safetensors). */
export const CHECKPOINT_EXTENSIONS = [".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".distcp"] as const;

/** Directories never descended into: our own run state, VCS data, dependency trees. */
const SKIPPED_DIRS = new Set([".ckptguard", ".git", "node_modules", "__pycache__"]);

/**
 * Expands the paths given on the command line: a file stays itself (whatever its name),
 * a directory becomes every checkpoint-looking file below it, sorted.
 */
export async function collectCheckpointPaths(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      throw fsError(error, path);
    }
    if (!info.isDirectory()) {
      out.push(path);
      continue;
    }
    const found = await walk(path);
    if (found.length === 0) throw new CkptError("NO_CHECKPOINTS", "directory holds no checkpoint files (.pt .pth .ckpt .bin .safetensors .distcp or zip)", { file: path });
    out.push(...found);
  }
  return out;
}

async function walk(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw fsError(error, dir);
  }
  const out: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) out.push(...(await walk(full)));
    } else if (entry.isFile() && (CHECKPOINT_EXTENSIONS.some((ext) => entry.name.endsWith(ext)) || (await hasZipMagic(full)))) {
      out.push(full);
    }
  }
  return out;
}

async function hasZipMagic(path: string): Promise<boolean> {
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
