import { stat } from "node:fs/promises";
import { shardedDirOf } from "../formats/sharded/stands-for.js";
import { CkptError } from "../errors.js";
import { detectLayout, type LayoutName } from "../formats/layout.js";
import { readCheckpoint } from "../formats/open.js";
import { FileSource } from "../formats/file-source.js";
import { DTYPE_SIZE, elementCount, type CheckpointModel, type DType } from "../formats/model.js";
import { topLevelKeys, walkLeaves } from "../formats/tree.js";
import { isEmptyContainer, valueEntry, type ValueEntry } from "./entry-json.js";

export interface TensorEntry {
  dtype: DType;
  shape: number[];
  sha256?: string;
}

export type Entry = TensorEntry | ValueEntry;

/** The checkpoint's layout as `inspect --json` shows it (null where the checkpoint does not say). */
export interface LayoutJson {
  name: LayoutName;
  model_path: string | null;
  optimizer_path: string | null;
  step: number | null;
  epoch: number | null;
  loss: number | null;
  parameter_count: number;
  parts: string[];
}

/** The `inspect --json` document of DESIGN.md, plus totals. */
export interface InspectResult {
  path: string;
  format: CheckpointModel["format"];
  top_level_keys: string[];
  entries: Record<string, Entry>;
  file_size: number;
  tensor_count: number;
  total_elements: number;
  tensor_bytes: number;
  unsafe_globals: string[];
  layout: LayoutJson;
}

export interface InspectOptions {
  /** Add the SHA-256 of each tensor's logical elements (reads every tensor byte). */
  tensorHash?: boolean;
}

/**
 * Reads a checkpoint's structure without verifying CRCs: fast enough for a 1.5 GB file in well
 * under a second. A sharded checkpoint directory (or its index / `.metadata`) shows as one
 * checkpoint: every tensor across its shards, at its global shape for DCP.
 */
export async function inspectCheckpoint(path: string, options: InspectOptions = {}): Promise<InspectResult> {
  const info = await stat(path).catch(() => undefined); // a missing path: readCheckpoint reports it
  const shardedDir = info === undefined ? undefined : await shardedDirOf(path, info.isDirectory());
  if (shardedDir !== undefined && options.tensorHash === true) {
    // A DCP tensor is spread over chunks in several files; hashing it means assembling it first.
    throw new CkptError("USAGE", "--tensor-hash hashes the tensors of one file; it does not assemble a sharded checkpoint's chunks", { file: path });
  }
  const model = shardedDir !== undefined ? await readShardedModel(shardedDir) : await readCheckpoint(path, { checkCrc: false });
  const entries: Record<string, Entry> = {};
  // Loaded on demand, like verifyShardedDir below: a plain inspect needs neither.
  const hashTensor = options.tensorHash ? (await import("../formats/tensor-hash.js")).hashTensor : undefined;
  const source = hashTensor ? await FileSource.open(path, model.fileSize) : undefined;
  const tensorsByPath = new Map(model.tensors.map((t) => [t.path, t]));
  try {
    for (const leaf of walkLeaves(model.root)) {
      if (leaf.kind === "tensor") {
        const entry: TensorEntry = { dtype: leaf.tensor.dtype, shape: leaf.tensor.shape };
        if (source && hashTensor) {
          const record = tensorsByPath.get(leaf.path);
          if (record) entry.sha256 = await hashTensor(source, record);
        }
        entries[leaf.path] = entry;
      } else if (!isEmptyContainer(leaf.value)) {
        entries[leaf.path] = valueEntry(leaf.value);
      }
    }
  } finally {
    await source?.close();
  }
  let totalElements = 0;
  let tensorBytes = 0;
  for (const t of model.tensors) {
    const n = elementCount(t.shape);
    totalElements += n;
    tensorBytes += n * DTYPE_SIZE[t.dtype];
  }
  return {
    path,
    format: model.format,
    top_level_keys: topLevelKeys(model.root),
    entries,
    file_size: model.fileSize,
    tensor_count: model.tensors.length,
    total_elements: totalElements,
    tensor_bytes: tensorBytes,
    unsafe_globals: [...new Set(model.unsafeGlobals.map((u) => `${u.module}.${u.name}`))],
    layout: layoutJson(model),
  };
}

/** The sharded checkpoint as one model, read as `verify` reads it but without the CRC pass; an unreadable index throws its problem. */
async function readShardedModel(dir: string): Promise<CheckpointModel> {
  const { verifyShardedDir } = await import("../verify/sharded/index.js");
  const { report, model } = await verifyShardedDir(dir, { checkCrc: false });
  if (model) return model;
  const first = report.problems.find((p) => p.severity === "error") ?? report.problems[0];
  throw new CkptError(first?.code ?? "NOT_A_CHECKPOINT", first?.message ?? "not a readable sharded checkpoint", { file: dir, ...(first?.where.member !== undefined ? { member: first.where.member } : {}) });
}

function layoutJson(model: CheckpointModel): LayoutJson {
  const layout = detectLayout(model);
  return {
    name: layout.name,
    model_path: layout.modelPath ?? null,
    optimizer_path: layout.optimizerPath ?? null,
    step: layout.step ?? null,
    epoch: layout.epoch ?? null,
    loss: layout.loss ?? null,
    parameter_count: layout.parameterCount,
    parts: layout.parts,
  };
}
