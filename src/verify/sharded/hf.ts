import { readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { isCkptError } from "../../errors.js";
import { emptyIntegrity, type CheckpointModel, type PickleValue, type TensorRecord, type TensorRef, type UnsafeGlobalUse } from "../../formats/model.js";
import type { ShardedLayout } from "../../formats/sharded/detect.js";
import { impliedShardPattern, readHfIndex, type HfIndex } from "../../formats/sharded/hf-index.js";
import { shardNameProblem } from "../../formats/sharded/shard-path.js";
import { uniqueStorages } from "../../formats/torch.js";
import { problem, type Problem } from "../report.js";
import type { CrcPool } from "../../formats/zip.js";
import { mapLimit } from "../../map-limit.js";
import { verifyFileSharing, type VerifyOptions } from "../verify-file.js";
import { shardedCrcThreads, withCrcThreads } from "./crc-threads.js";
import { shardProblems } from "./shard-problems.js";
import type { ShardedOutcome } from "./verify-sharded-dir.js";

/** Tensor names listed one by one per shard and kind of mismatch before the rest are counted. */
const MAX_NAMES_LISTED = 10;

type HfLayout = Extract<ShardedLayout, { kind: "hf-sharded" }>;

interface ShardResult {
  missing: boolean;
  problems: Problem[];
  model?: CheckpointModel;
}

/**
 * Hugging Face sharded weights: every shard the weight map names exists and verifies as a
 * file of its own, holds every tensor the index places in it and none the index places
 * elsewhere or not at all.
 */
export async function verifyHfShardedDir(layout: HfLayout, options: VerifyOptions): Promise<ShardedOutcome> {
  const problems: Problem[] = [];
  const shards = new Map<string, ShardResult>();
  const merged = new Map<string, TensorRef>();
  const unsafeGlobals: UnsafeGlobalUse[] = [];
  let fileSize = 0;
  let readable = false;
  const dirNames = await readdir(layout.dir).catch(() => [] as string[]);
  const indexes = await Promise.all(layout.indexPaths.map(readIndexOrProblem));
  const verified = await verifyShardsConcurrently(layout.dir, indexes, options);
  for (const [indexPath, index] of layout.indexPaths.map((path, i) => [path, indexes[i]!] as const)) {
    const indexName = basename(indexPath);
    if ("code" in index) {
      problems.push(problem(index.code, `${indexName}: ${index.message}`, { member: indexName }));
      continue;
    }
    readable = true;
    fileSize += index.fileSize;
    problems.push(...index.defects.map((defect) => problem("SHARD_INDEX_MALFORMED", `${indexName}: ${defect}`, { member: indexName })));
    for (const [shard, names] of namesByShard(index)) {
      const escape = shardNameProblem(shard);
      if (escape !== undefined) {
        problems.push({ ...problem("SHARD_PATH_ESCAPE", `${indexName} places ${names.length} tensors in ${JSON.stringify(shard)}, which ${escape}`, { member: indexName }), details: { shard, index: indexName } });
        continue;
      }
      const seen = shards.get(shard);
      const result = seen ?? verified.get(shard)!;
      if (!seen) {
        shards.set(shard, result);
        problems.push(...result.problems);
        fileSize += result.model?.fileSize ?? 0;
        unsafeGlobals.push(...(result.model?.unsafeGlobals ?? []));
      }
      if (result.missing) {
        problems.push({ ...problem("SHARD_MISSING", `shard ${shard} is missing; ${indexName} places ${names.length} tensors in it (${listNames(names)})`, { member: shard }), details: { shard, index: indexName, tensors: names.length } });
        continue;
      }
      if (!result.model) continue;
      problems.push(...tensorCoverageProblems(shard, indexName, index, names, result.model.tensors));
      for (const tensor of result.model.tensors) if (index.weightMap.get(tensor.path) === shard && !merged.has(tensor.path)) merged.set(tensor.path, tensorRef(tensor));
    }
    problems.push(...unreferencedShardProblems(indexName, index, dirNames));
  }
  if (!readable) return { problems };
  const root: PickleValue = { kind: "dict", entries: [...merged].map(([name, ref]): [PickleValue, PickleValue] => [name, ref]) };
  const tensors = [...merged].map(([path, ref]) => ({ path, dtype: ref.dtype, shape: ref.shape, stride: ref.stride, storageOffset: ref.storageOffset, storage: ref.storage, requiresGrad: ref.requiresGrad, isParameter: ref.isParameter }));
  const model: CheckpointModel = {
    path: layout.dir, format: "hf-sharded", fileSize, root, tensors, storages: uniqueStorages(tensors.map((t) => t.storage)),
    members: [], unsafeGlobals, integrity: emptyIntegrity(), versions: {},
  };
  return { problems, model };
}

async function readIndexOrProblem(indexPath: string): Promise<HfIndex | { code: string; message: string }> {
  try {
    return await readHfIndex(indexPath);
  } catch (error) {
    if (!isCkptError(error)) throw error;
    return { code: error.code, message: error.message };
  }
}

/**
 * Every shard the indexes name (and may open), verified a few at a time with their CRCs on
 * shared worker threads (crc-threads.ts); keyed by name, so the report is built in index
 * order whatever finished first.
 */
async function verifyShardsConcurrently(dir: string, indexes: ReadonlyArray<HfIndex | { code: string }>, options: VerifyOptions): Promise<Map<string, ShardResult>> {
  const names = new Set<string>();
  for (const index of indexes) if (!("code" in index)) for (const shard of index.weightMap.values()) if (shardNameProblem(shard) === undefined) names.add(shard);
  const shards = [...names].sort();
  const sizes = await Promise.all(shards.map((shard) => stat(join(dir, shard)).then((info) => info.size, () => 0)));
  const threads = shardedCrcThreads(options, sizes.reduce((sum, size) => sum + size, 0), shards.length);
  const results = await withCrcThreads(threads, (pool, inFlight) => mapLimit(shards, inFlight, (shard) => verifyShard(dir, shard, options, pool)));
  return new Map(shards.map((shard, i) => [shard, results[i]!]));
}

/** One shard verified as a file of its own (CRC, safety, bounds, and --deep's finite scan). */
async function verifyShard(dir: string, shard: string, options: VerifyOptions, pool: CrcPool | undefined): Promise<ShardResult> {
  // One CRC thread or the pool: never threads of the shard's own on top of the pool's.
  const { report, model } = await verifyFileSharing(join(dir, shard), pool ? options : { ...options, workers: 1 }, [], pool);
  if (report.problems.some((p) => p.code === "NOT_FOUND")) return { missing: true, problems: [] };
  return { missing: false, problems: shardProblems(shard, report.problems), ...(model ? { model } : {}) };
}

/** Index and shard agree on which tensors the shard holds. */
function tensorCoverageProblems(shard: string, indexName: string, index: HfIndex, names: readonly string[], tensors: readonly TensorRecord[]): Problem[] {
  const out: Problem[] = [];
  const present = new Set(tensors.map((t) => t.path));
  const absent = names.filter((name) => !present.has(name));
  if (absent.length > 0) {
    out.push({ ...problem("SHARD_COVERAGE", `${indexName} places ${absent.length} tensors in ${shard} that it does not hold: ${listNames(absent)}`, { member: shard }), details: { shard, index: indexName, tensors: absent.length } });
  }
  const unnamed = [...present].filter((name) => !index.weightMap.has(name));
  if (unnamed.length > 0) {
    out.push({ ...problem("SHARD_COVERAGE", `${shard} holds ${unnamed.length} tensors ${indexName} does not name: ${listNames(unnamed)}`, { member: shard }), details: { shard, index: indexName, tensors: unnamed.length } });
  }
  const elsewhere = [...present].filter((name) => index.weightMap.has(name) && index.weightMap.get(name) !== shard);
  if (elsewhere.length > 0) {
    const sample = elsewhere.slice(0, MAX_NAMES_LISTED).map((name) => `${name} (in ${index.weightMap.get(name)})`).join(", ");
    out.push({ ...problem("SHARD_COVERAGE", `${shard} holds ${elsewhere.length} tensors ${indexName} places in another shard: ${sample}${elsewhere.length > MAX_NAMES_LISTED ? ", ..." : ""}`, { member: shard }), details: { shard, index: indexName, tensors: elsewhere.length } });
  }
  return out;
}

/** `model-00003-of-00003.safetensors` beside an index that never names it: left over from another save; loaders ignore it. */
function unreferencedShardProblems(indexName: string, index: HfIndex, dirNames: readonly string[]): Problem[] {
  const pattern = impliedShardPattern(indexName);
  const named = new Set(index.weightMap.values());
  return dirNames
    .filter((name) => pattern?.test(name) && !named.has(name))
    .sort()
    .map((name) => ({ ...problem("SHARD_COVERAGE", `${name} is named like a shard of ${indexName} but the index does not name it (left over from another save?)`, { member: name }, "warning"), details: { shard: name, index: indexName } }));
}

function namesByShard(index: HfIndex): Array<[string, string[]]> {
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of index.weightMap) {
    const list = byShard.get(shard) ?? [];
    list.push(name);
    byShard.set(shard, list);
  }
  return [...byShard].sort(([a], [b]) => a.localeCompare(b));
}

function listNames(names: readonly string[]): string {
  return names.length > MAX_NAMES_LISTED ? `${names.slice(0, MAX_NAMES_LISTED).join(", ")} and ${names.length - MAX_NAMES_LISTED} more` : names.join(", ");
}

function tensorRef(tensor: TensorRecord): TensorRef {
  return {
    kind: "tensor", dtype: tensor.dtype, shape: tensor.shape, stride: tensor.stride, storageOffset: tensor.storageOffset, storage: tensor.storage,
    requiresGrad: tensor.requiresGrad === true, isParameter: tensor.isParameter === true,
  };
}
