import { isCkptError } from "../errors.js";
import { readCheckpoint } from "../formats/open.js";
import type { CheckpointModel } from "../formats/model.js";
import type { CrcPool } from "../formats/zip.js";
import { boundsProblems } from "./bounds.js";
import { finiteRule } from "./finite.js";
import { integrityProblems } from "./integrity.js";
import { optimizerRule } from "./optimizer.js";
import { makeReport, problem, type Problem, type Report } from "./report.js";
import { safetyProblems } from "./safety.js";
import { formatVersionRule } from "./versions.js";

export interface VerifyOptions {
  /** Extra `module.name` globals the user trusts (e.g. their own config dataclass). */
  allowGlobals?: ReadonlySet<string>;
  /** Stream every zip member through CRC-32 (default true); false checks structure only, for fast listings. */
  checkCrc?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Read every floating-point tensor's bytes and report NaN/Inf (NON_FINITE). */
  deep?: boolean;
  /** Called as the deep scan counts bytes (for a progress bar). */
  onScanProgress?: (progress: ScanProgress) => void;
  /**
   * Worker threads for the CRC pass: 1 keeps it on this thread. By default one per core (at
   * most 4) once a file, or a sharded checkpoint's shards together, hold 256 MiB or more.
   */
  workers?: number;
}

export interface ScanProgress {
  path: string;
  fileSize: number;
  /** Bytes of floating-point tensor data counted so far, and in all. */
  done: number;
  total: number;
}

/** A rule reads the model and returns problems; it never touches the file. */
export type Rule = (model: CheckpointModel) => Problem[];

/** Reads one file and runs every rule over it. Never throws for bad input: it reports. */
export async function verifyFile(path: string, options: VerifyOptions = {}, extraRules: readonly Rule[] = []): Promise<{ report: Report; model?: CheckpointModel }> {
  return verifyFileSharing(path, options, extraRules, undefined);
}

/** verifyFile whose CRC pass goes to `crcPool`, the threads the shards of one sharded checkpoint share. */
export async function verifyFileSharing(
  path: string, options: VerifyOptions, extraRules: readonly Rule[], crcPool: CrcPool | undefined,
): Promise<{ report: Report; model?: CheckpointModel }> {
  let model: CheckpointModel;
  try {
    model = await readCheckpoint(path, {
      checkCrc: options.checkCrc ?? true,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(crcPool ? { crcPool } : {}),
    });
  } catch (error) {
    if (!isCkptError(error)) throw error;
    const { member, offset, path: keyPath } = error.where;
    const where = { ...(member !== undefined ? { member } : {}), ...(offset !== undefined ? { offset } : {}), ...(keyPath !== undefined ? { path: keyPath } : {}) };
    return { report: makeReport(path, "unknown", [problem(error.code, error.message, where)]) };
  }
  const problems: Problem[] = [];
  if (options.deep === true) {
    const onScanProgress = options.onScanProgress;
    const progress = onScanProgress ? { onProgress: (done: number, total: number) => onScanProgress({ path, fileSize: model.fileSize, done, total }) } : {};
    try {
      const { scanFiniteFile } = await import("../formats/finite-scan.js"); // only --deep needs it
      model.finite = await scanFiniteFile(model, progress);
    } catch (error) {
      if (!isCkptError(error)) throw error;
      problems.push(problem(error.code, `deep scan: ${error.message}`, error.where.offset !== undefined ? { offset: error.where.offset } : {}));
    }
  }
  // Content rules (optimizer state, format versions, finite values) run on every file; options add more.
  const rules: Rule[] = [integrityProblems, (m) => safetyProblems(m, options.allowGlobals), boundsProblems, optimizerRule, formatVersionRule, finiteRule, ...extraRules];
  problems.push(...rules.flatMap((rule) => rule(model)));
  return { report: makeReport(path, model.format, problems), model };
}
