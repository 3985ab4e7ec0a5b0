import type { CheckpointModel } from "../../formats/model.js";
import { detectShardedDir } from "../../formats/sharded/detect.js";
import { makeReport, problem, type Problem, type Report } from "../report.js";
import type { Rule, VerifyOptions } from "../verify-file.js";
import { verifyDcpDir } from "./dcp.js";
import { verifyHfShardedDir } from "./hf.js";

export interface ShardedOutcome {
  problems: Problem[];
  /** The checkpoint as one model (for --require/--expect and `ls`); absent when its index is unreadable. */
  model?: CheckpointModel;
}

/**
 * Verifies a directory holding one sharded checkpoint (torch.distributed.checkpoint, or
 * Hugging Face `*.index.json` + shards) as ONE checkpoint: one report whose path is the
 * directory, with a problem per missing or bad shard. `extraRules` (--require, --expect,
 * --min-size, ...) run over the whole checkpoint's model, never over single shards: the
 * model's root is a dict of every tensor (and DCP's non-tensor values) by key, its
 * `fileSize` the sum of the files. Never throws for bad input: it reports.
 */
export async function verifyShardedDir(dir: string, options: VerifyOptions = {}, extraRules: readonly Rule[] = []): Promise<{ report: Report; model?: CheckpointModel }> {
  const layout = await detectShardedDir(dir);
  if (!layout) {
    return { report: makeReport(dir, "unknown", [problem("NOT_A_CHECKPOINT", "not a sharded checkpoint directory (no DCP .metadata/.distcp files, no *.safetensors.index.json or *.bin.index.json)")]) };
  }
  const outcome = layout.kind === "dcp" ? await verifyDcpDir(layout, options) : await verifyHfShardedDir(layout, options);
  const model = outcome.model;
  const problems = model ? [...outcome.problems, ...extraRules.flatMap((rule) => rule(model))] : outcome.problems;
  return { report: makeReport(dir, layout.kind, problems), ...(model ? { model } : {}) };
}
