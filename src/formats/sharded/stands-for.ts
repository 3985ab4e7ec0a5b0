/**
 * Which sharded checkpoint a path means: the directory itself, or the directory of its HF index,
 * its DCP `.metadata` or one of its `.distcp` shards (a shard holds many torch.save streams at
 * offsets only `.metadata` knows, so read as one file just its first stream would be seen).
 * `verify` and `inspect` both ask this, so a path means the same checkpoint to each. The
 * sharded readers load only when the name could be one of those, so a plain file pays nothing.
 */
import { basename, dirname } from "node:path";

/** Cheap test before loading anything: HF index names end in .json, DCP's in .metadata or .distcp. */
const MAY_STAND_FOR_DIR = /(\.json|^\.metadata|\.distcp)$/;

export async function shardedDirOf(path: string, isDirectory: boolean): Promise<string | undefined> {
  const name = basename(path);
  if (!isDirectory && !MAY_STAND_FOR_DIR.test(name)) return undefined;
  const { DCP_METADATA_FILE, detectShardedDir, HF_INDEX_NAME } = await import("./index.js");
  const dir = isDirectory ? path
    : HF_INDEX_NAME.test(name) || name === DCP_METADATA_FILE || name.endsWith(".distcp") ? dirname(path) : undefined;
  return dir !== undefined && (await detectShardedDir(dir)) !== undefined ? dir : undefined;
}
