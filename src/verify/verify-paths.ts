import { isCkptError } from "../errors.js";
import type { Verdict } from "./codes.js";
import { collectCheckpointTargets, type CheckpointTarget } from "./collect-paths.js";
import { exitCodeOf, makeReport, problem, type Report } from "./report.js";
import { verifyFile, type Rule, type VerifyOptions } from "./verify-file.js";

export interface VerifySummary {
  valid: number;
  invalid: number;
  unsafe: number;
  by_verdict: Record<Verdict, number>;
}

export interface VerifyResult {
  files: Report[];
  summary: VerifySummary;
  exitCode: 0 | 1 | 3;
}

/** Verifies files and directories (expanded to the checkpoints below them). */
export async function verifyPaths(paths: readonly string[], options: VerifyOptions = {}, rules: readonly Rule[] = []): Promise<VerifyResult> {
  const files: Report[] = [];
  for (const path of paths) {
    let expanded: CheckpointTarget[];
    try {
      expanded = await collectCheckpointTargets([path]);
    } catch (error) {
      if (!isCkptError(error)) throw error;
      files.push(makeReport(path, "unknown", [problem(error.code, error.message)]));
      continue;
    }
    for (const target of expanded) {
      // A sharded directory (DCP, HF index + shards) is one checkpoint with one report.
      // Its readers load on demand, so verifying single files does not pay for them at start-up.
      const verified = target.kind === "sharded-dir"
        ? await (await import("./sharded/verify-sharded-dir.js")).verifyShardedDir(target.path, options, rules)
        : await verifyFile(target.path, options, rules);
      files.push(verified.report);
    }
  }
  return { files, summary: summarize(files), exitCode: exitCodeOf(files) };
}

export function summarize(files: readonly Report[]): VerifySummary {
  const byVerdict: Record<Verdict, number> = { valid: 0, corrupt: 0, unsafe: 0, incomplete: 0, incompatible: 0, unreadable: 0 };
  for (const f of files) byVerdict[f.verdict]++;
  return { valid: byVerdict.valid, invalid: files.length - byVerdict.valid - byVerdict.unsafe, unsafe: byVerdict.unsafe, by_verdict: byVerdict };
}
