import { join } from "node:path";
import { isCkptError } from "../../errors.js";
import { FileSource } from "../../formats/file-source.js";
import { scanFinite } from "../../formats/finite-scan.js";
import { emptyIntegrity, type CheckpointModel, type PickleValue, type TensorRef } from "../../formats/model.js";
import { fsError, readSource, regularFileSize } from "../../formats/open.js";
import { DCP_METADATA_FILE, readDcpMetadata, type DcpEntry, type DcpMetadata, type DcpStorageItem } from "../../formats/sharded/dcp.js";
import type { ShardedLayout } from "../../formats/sharded/detect.js";
import { shardNameProblem } from "../../formats/sharded/shard-path.js";
import { collectTensors } from "../../formats/tree.js";
import type { CrcPool } from "../../formats/zip.js";
import { mapLimit } from "../../map-limit.js";
import { boundsProblems } from "../bounds.js";
import { finiteRule } from "../finite.js";
import { integrityProblems } from "../integrity.js";
import { problem, type Problem } from "../report.js";
import { safetyProblems } from "../safety.js";
import type { VerifyOptions } from "../verify-file.js";
import { box, chunkCoverageProblems } from "./chunk-coverage.js";
import { shardedCrcThreads, withCrcThreads } from "./crc-threads.js";
import { shardProblems, shardUnreadable } from "./shard-problems.js";
import type { ShardedOutcome } from "./verify-sharded-dir.js";

type DcpLayout = Extract<ShardedLayout, { kind: "dcp" }>;

/**
 * A torch.distributed.checkpoint directory: `.metadata` read safely, every shard it names
 * present, every item's byte range inside its shard and a torch.save stream that passes
 * the checks a single file gets, and every tensor tiled by its chunks exactly once.
 */
export async function verifyDcpDir(layout: DcpLayout, options: VerifyOptions): Promise<ShardedOutcome> {
  let metadata: DcpMetadata;
  try {
    metadata = await readDcpMetadata(layout.metadataPath);
  } catch (error) {
    if (!isCkptError(error)) throw error;
    if (error.code === "NOT_FOUND") {
      // filesystem.py `finish` renames .metadata.tmp into place after every rank wrote its shards.
      return { problems: [{ ...problem("SHARD_MISSING", `${DCP_METADATA_FILE} is missing: torch writes it last, so the save never finished`, { member: DCP_METADATA_FILE }), details: { shard: DCP_METADATA_FILE } }] };
    }
    const at = { member: DCP_METADATA_FILE, ...(error.where.offset !== undefined ? { offset: error.where.offset } : {}) };
    return { problems: [problem(error.code, `${DCP_METADATA_FILE}: ${error.message}`, at)] };
  }
  const model = emptyModel(layout.dir, metadata);
  const problems: Problem[] = [
    ...safetyProblems(model, options.allowGlobals),
    ...metadata.defects.map((defect) => problem("SHARD_INDEX_MALFORMED", `${DCP_METADATA_FILE}: ${defect}`, { member: DCP_METADATA_FILE })),
  ];
  for (const entry of metadata.entries) if (entry.kind === "tensor") problems.push(...chunkCoverageProblems(entry, DCP_METADATA_FILE));
  problems.push(...storageCoverageProblems(metadata));

  const values = new Map<string, PickleValue>();
  const entries = new Map(metadata.entries.map((entry) => [entry.fqn, entry]));
  const files = [...groupByFile(metadata.items)];
  const threads = shardedCrcThreads(options, metadata.items.reduce((sum, item) => sum + item.length, 0), files.length);
  // Shard files are verified concurrently but their outcomes are taken in file order: the report never depends on timing.
  const outcomes = await withCrcThreads(threads, (pool, inFlight) =>
    mapLimit(files, inFlight, ([shard, items]) => verifyShardFile(layout.dir, shard, items, entries, options, pool)));
  for (const checked of outcomes) {
    problems.push(...checked.problems);
    model.fileSize += checked.fileSize;
    for (const [fqn, value] of checked.values) values.set(fqn, value);
  }
  model.root = { kind: "dict", entries: metadata.entries.map((entry) => [entry.fqn, entry.kind === "tensor" ? globalTensor(entry) : values.get(entry.fqn) ?? null]) };
  model.tensors = collectTensors(model.root);
  return { problems, model };
}

/** Every chunk and bytes entry has a storage item, and every storage item belongs to one. */
function storageCoverageProblems(metadata: DcpMetadata): Problem[] {
  const out: Problem[] = [];
  const stored = new Set(metadata.items.map((item) => itemKey(item.fqn, item.chunkOffsets)));
  const declared = new Set<string>();
  for (const entry of metadata.entries) {
    const keys = entry.kind === "bytes" ? [itemKey(entry.fqn, undefined)] : entry.chunks.map((chunk) => itemKey(entry.fqn, chunk.offsets));
    for (const key of keys) declared.add(key);
    keys.forEach((key, i) => {
      if (stored.has(key)) return;
      const what = entry.kind === "bytes" ? entry.fqn : `${entry.fqn}${box(entry.chunks[i]!)}`;
      out.push(problem("SHARD_COVERAGE", `${what} has no storage entry: no shard holds it`, { member: DCP_METADATA_FILE, path: entry.fqn }));
    });
  }
  for (const item of metadata.items) {
    if (declared.has(itemKey(item.fqn, item.chunkOffsets))) continue;
    out.push(problem("SHARD_COVERAGE", `${item.relativePath} holds ${item.fqn}${item.chunkOffsets ? ` at [${item.chunkOffsets.join(", ")}]` : ""}, which state_dict_metadata does not declare; loaders never read it`, { member: item.relativePath, path: item.fqn }, "warning"));
  }
  return out;
}

interface ShardFileOutcome {
  problems: Problem[];
  fileSize: number;
  /** Non-tensor values (BytesStorageMetadata entries) as their torch.save streams hold them. */
  values: Map<string, PickleValue>;
}

type EntriesByKey = ReadonlyMap<string, DcpEntry>;

async function verifyShardFile(
  dir: string, shard: string, items: readonly DcpStorageItem[], entries: EntriesByKey, options: VerifyOptions, pool: CrcPool | undefined,
): Promise<ShardFileOutcome> {
  const outcome: ShardFileOutcome = { problems: [], fileSize: 0, values: new Map() };
  const escape = shardNameProblem(shard);
  if (escape !== undefined) {
    outcome.problems.push({ ...problem("SHARD_PATH_ESCAPE", `${DCP_METADATA_FILE} names shard ${JSON.stringify(shard)}, which ${escape}`, { member: DCP_METADATA_FILE }), details: { shard } });
    return outcome;
  }
  const path = join(dir, shard);
  let size: number;
  try {
    size = await regularFileSize(path);
  } catch (error) {
    if (!isCkptError(error)) throw error;
    if (error.code === "NOT_FOUND") {
      const held = [...new Set(items.map((item) => item.fqn))];
      const listed = held.length > 5 ? `${held.slice(0, 5).join(", ")} and ${held.length - 5} more` : held.join(", ");
      outcome.problems.push({ ...problem("SHARD_MISSING", `shard ${shard} is missing; it holds ${listed}`, { member: shard }), details: { shard, keys: held.length } });
    } else {
      outcome.problems.push(shardUnreadable(shard, error.code, error.message));
    }
    return outcome;
  }
  outcome.fileSize = size;
  let source: FileSource;
  try {
    source = await FileSource.open(path, size);
  } catch (error) {
    const failure = fsError(error, path);
    outcome.problems.push(shardUnreadable(shard, failure.code, failure.message));
    return outcome;
  }
  try {
    for (const item of items) {
      const problems = await verifyItem(source, item, entries, options, pool, outcome.values);
      // One SHARD_CORRUPT per shard file: the first bad item names it; unsafe items are all kept.
      const alreadyCorrupt = outcome.problems.some((p) => p.code === "SHARD_CORRUPT");
      outcome.problems.push(...problems.filter((p) => !(alreadyCorrupt && p.code === "SHARD_CORRUPT")));
    }
  } finally {
    await source.close();
  }
  return outcome;
}

/** One write item: a torch.save stream at [offset, offset + length) of its shard. */
async function verifyItem(
  source: FileSource, item: DcpStorageItem, entries: EntriesByKey, options: VerifyOptions, pool: CrcPool | undefined, values: Map<string, PickleValue>,
): Promise<Problem[]> {
  const shard = item.relativePath;
  const what = `shard ${shard}, item ${item.fqn}${item.chunkOffsets ? ` at [${item.chunkOffsets.join(", ")}]` : ""} (bytes ${item.offset}..${item.offset + item.length})`;
  if (item.offset + item.length > source.size) {
    return [shardUnreadable(shard, "TRUNCATED", `needs bytes up to ${item.offset + item.length} but the shard ends at ${source.size}`, what, item.offset)];
  }
  const window = source.window(item.offset, item.length, what);
  let model: CheckpointModel;
  try {
    // One CRC thread or the pool: never threads of the item's own on top of the shard files'.
    model = await readSource(window, { checkCrc: options.checkCrc ?? true, ...(pool ? { crcPool: pool } : { workers: 1 }) });
  } catch (error) {
    if (!isCkptError(error)) throw error;
    return [shardUnreadable(shard, error.code, error.message, what, item.offset)];
  }
  const inner = [integrityProblems(model), safetyProblems(model, options.allowGlobals), boundsProblems(model)].flat();
  if (options.deep === true && inner.length === 0) inner.push(...(await deepScan(source, window, model)));
  const out = shardProblems(shard, inner, what, item.offset);
  const entry = entries.get(item.fqn);
  if (entry?.kind === "bytes") values.set(item.fqn, model.root);
  else if (entry?.kind === "tensor") out.push(...itemTensorProblems(entry, item, model.root));
  return out;
}

/**
 * The deep scan reads by file offset, so the item's storages are moved from the window's
 * offsets to the shard file's before it runs over the whole file.
 */
async function deepScan(file: FileSource, window: FileSource, model: CheckpointModel): Promise<Problem[]> {
  for (const storage of model.storages) if (storage.bytes) storage.bytes = { offset: storage.bytes.offset + window.base, length: storage.bytes.length };
  try {
    model.finite = await scanFinite(file, model);
  } catch (error) {
    if (!isCkptError(error)) throw error;
    return [problem(error.code, `deep scan: ${error.message}`)];
  }
  return finiteRule(model);
}

/** A tensor item must hold exactly its chunk: the chunk's sizes, the tensor's dtype. */
function itemTensorProblems(entry: Extract<DcpEntry, { kind: "tensor" }>, item: DcpStorageItem, root: PickleValue): Problem[] {
  const chunk = entry.chunks.find((c) => item.chunkOffsets !== undefined && sameList(c.offsets, item.chunkOffsets));
  if (!chunk) return []; // reported by storageCoverageProblems
  const at = { member: item.relativePath, offset: item.offset, path: entry.fqn };
  const label = `${entry.fqn}${box(chunk)} in ${item.relativePath}`;
  if (root === null || typeof root !== "object" || Array.isArray(root) || root.kind !== "tensor") {
    return [problem("SHARD_COVERAGE", `${label} is not a tensor`, at)];
  }
  const out: Problem[] = [];
  if (!sameList(root.shape, chunk.sizes)) out.push(problem("SHARD_COVERAGE", `${label} holds a tensor of shape [${root.shape.join(", ")}], the chunk is [${chunk.sizes.join(", ")}]`, at));
  if (entry.dtype !== undefined && root.dtype !== entry.dtype) out.push(problem("SHARD_COVERAGE", `${label} holds ${root.dtype}, the tensor is ${entry.dtype}`, at));
  return out;
}

function groupByFile(items: readonly DcpStorageItem[]): Map<string, DcpStorageItem[]> {
  const byFile = new Map<string, DcpStorageItem[]>();
  for (const item of [...items].sort((a, b) => a.relativePath.localeCompare(b.relativePath) || a.offset - b.offset)) {
    const list = byFile.get(item.relativePath) ?? [];
    list.push(item);
    byFile.set(item.relativePath, list);
  }
  return byFile;
}

/** The model of the whole checkpoint: each global tensor as metadata declares it (no bytes: they are spread over shards). */
function emptyModel(dir: string, metadata: DcpMetadata): CheckpointModel {
  return {
    path: dir, format: "dcp", fileSize: metadata.fileSize, root: { kind: "dict", entries: [] }, tensors: [], storages: [], members: [],
    unsafeGlobals: metadata.unsafeGlobals, integrity: emptyIntegrity(), versions: {},
  };
}

function globalTensor(entry: Extract<DcpEntry, { kind: "tensor" }>): TensorRef {
  const dtype = entry.dtype ?? "uint8";
  const stride = entry.size.map((_, d) => entry.size.slice(d + 1).reduce((p, s) => p * s, 1));
  return {
    kind: "tensor", dtype, shape: entry.size, stride, storageOffset: 0, requiresGrad: false, isParameter: false,
    storage: { key: entry.fqn, dtype, bytes: undefined, byteOrder: "little" },
  };
}

function itemKey(fqn: string, offsets: readonly number[] | undefined): string {
  return `${fqn}\u0000${offsets ? offsets.join(",") : "-"}`;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
