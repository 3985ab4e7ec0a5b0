import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { DCP_METADATA_FILE, DCP_SHARD_NAME } from "./dcp.js";
import { HF_INDEX_NAME, impliedShardPattern, readHfIndex } from "./hf-index.js";
import { shardNameProblem } from "./shard-path.js";

/** A directory that holds one checkpoint split over several files. */
export type ShardedLayout =
  | {
    kind: "dcp";
    dir: string;
    /** Full path of `.metadata` (which may be absent: a save that died before writing it). */
    metadataPath: string;
    /** The files of the checkpoint that exist: `.metadata` and every `.distcp` file. */
    files: string[];
  }
  | {
    kind: "hf-sharded";
    dir: string;
    /** Full paths of the `*.safetensors.index.json` / `*.bin.index.json` files, sorted. */
    indexPaths: string[];
    /** The files of the checkpoint that exist: the indexes, the shards they name, and files named like their shards. */
    files: string[];
  };

/**
 * Which sharded layout `dir` holds, or undefined for a plain directory. A walker verifies
 * `layout.files` as one checkpoint and must not verify them again one by one; other files in
 * the directory (an HF Trainer's `optimizer.pt`) are still checkpoints of their own.
 */
export async function detectShardedDir(dir: string): Promise<ShardedLayout | undefined> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return undefined; // not a readable directory: the caller reports that for what it is
  }
  const fileNames = entries.filter((e) => e.isFile()).map((e) => e.name).sort();
  const distcp = fileNames.filter((name) => name.endsWith(".distcp"));
  const hasMetadata = fileNames.includes(DCP_METADATA_FILE) && (await startsWithPickle(join(dir, DCP_METADATA_FILE)));
  // `.metadata` alone is also an Eclipse/IDE name, so it counts only as a pickle or beside DCP shards.
  if (hasMetadata || distcp.some((name) => DCP_SHARD_NAME.test(name))) {
    const files = [...(fileNames.includes(DCP_METADATA_FILE) ? [DCP_METADATA_FILE] : []), ...distcp];
    return { kind: "dcp", dir, metadataPath: join(dir, DCP_METADATA_FILE), files: files.map((name) => join(dir, name)) };
  }
  const indexNames = fileNames.filter((name) => HF_INDEX_NAME.test(name));
  if (indexNames.length === 0) return undefined;
  const claimed = new Set(indexNames);
  for (const indexName of indexNames) {
    const pattern = impliedShardPattern(indexName);
    for (const name of fileNames) if (pattern?.test(name)) claimed.add(name);
    try {
      const index = await readHfIndex(join(dir, indexName));
      for (const shard of index.weightMap.values()) if (shardNameProblem(shard) === undefined && fileNames.includes(shard)) claimed.add(shard);
    } catch {
      // an unreadable index is reported by verifyShardedDir; the shards named like it are still claimed
    }
  }
  return { kind: "hf-sharded", dir, indexPaths: indexNames.map((name) => join(dir, name)), files: [...claimed].sort().map((name) => join(dir, name)) };
}

/** PROTO opcode (0x80) then a protocol 2-5: what `pickle.dump` writes. */
async function startsWithPickle(path: string): Promise<boolean> {
  try {
    const handle = await open(path, "r");
    try {
      const head = Buffer.alloc(2);
      const { bytesRead } = await handle.read(head, 0, 2, 0);
      return bytesRead === 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}
