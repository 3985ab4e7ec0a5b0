import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { CkptError } from "../../errors.js";
import { fsError, regularFileSize } from "../open.js";

/**
 * Hugging Face sharded weights (transformers/modeling_utils.py `save_pretrained` with
 * `max_shard_size`; huggingface_hub `split_torch_state_dict_into_shards`):
 *
 *   model.safetensors.index.json           {"metadata": {"total_size": N}, "weight_map": {tensor: shard}}
 *   model-00001-of-00003.safetensors ...   the shards it names
 *   pytorch_model.bin.index.json           the same for torch.save'd `.bin` shards
 *   pytorch_model-00001-of-00003.bin ...
 *
 * A repository often holds both sets side by side; each index is read on its own.
 */

/** `<prefix>.safetensors.index.json` / `<prefix>.bin.index.json` (diffusers: `diffusion_pytorch_model...`). */
export const HF_INDEX_NAME = /^(.+)\.(safetensors|bin)\.index\.json$/;

/** Index files are KBs to a few MB (one line per tensor); 64 MiB bounds hostile ones. */
const MAX_INDEX_BYTES = 64 << 20;

export interface HfIndex {
  path: string;
  fileSize: number;
  /** Tensor name -> shard file name, in the index's order (entries with a non-string shard are dropped into `defects`). */
  weightMap: Map<string, string>;
  /** `metadata.total_size`, when present. */
  totalSize?: number;
  /** Entries or fields of the wrong type: facts for a SHARD_INDEX_MALFORMED problem each. */
  defects: string[];
}

/** The shard names an index's file name implies: `model-00001-of-00003.safetensors` for `model.safetensors.index.json`. */
export function impliedShardPattern(indexName: string): RegExp | undefined {
  const match = HF_INDEX_NAME.exec(indexName);
  if (!match) return undefined;
  const prefix = match[1]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${prefix}-\\d+-of-\\d+\\.${match[2]}$`);
}

/** Reads and parses one index; throws CkptError (NOT_FOUND, SHARD_INDEX_MALFORMED, ...) when nothing usable is in it. */
export async function readHfIndex(path: string): Promise<HfIndex> {
  const name = basename(path);
  const size = await regularFileSize(path);
  if (size > MAX_INDEX_BYTES) throw new CkptError("SHARD_INDEX_MALFORMED", `${name} is ${size} bytes, over ${MAX_INDEX_BYTES}`, { file: path, member: name });
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw fsError(error, path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CkptError("SHARD_INDEX_MALFORMED", `${name} is not JSON: ${(error as Error).message}`, { file: path, member: name }, { cause: error });
  }
  if (!isRecord(json) || !isRecord(json.weight_map)) {
    throw new CkptError("SHARD_INDEX_MALFORMED", `${name} has no "weight_map" object`, { file: path, member: name });
  }
  const index: HfIndex = { path, fileSize: size, weightMap: new Map(), defects: [] };
  for (const [tensor, shard] of Object.entries(json.weight_map)) {
    if (typeof shard === "string") index.weightMap.set(tensor, shard);
    else index.defects.push(`weight_map[${JSON.stringify(tensor)}] is ${shard === null ? "null" : typeof shard}, not a shard file name`);
  }
  const totalSize = isRecord(json.metadata) ? json.metadata.total_size : undefined;
  if (typeof totalSize === "number") index.totalSize = totalSize;
  return index;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
