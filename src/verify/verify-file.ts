import { isCkptError } from "../errors.js";
import { readCheckpoint } from "../formats/open.js";
import type { CheckpointModel } from "../formats/model.js";
import { boundsProblems } from "./bounds.js";
import { integrityProblems } from "./integrity.js";
import { makeReport, problem, type Problem, type Report } from "./report.js";
import { safetyProblems } from "./safety.js";

export interface VerifyOptions {
  /** Extra `module.name` globals the user trusts (e.g. their own config dataclass). */
  allowGlobals?: ReadonlySet<string>;
  onProgress?: (done: number, total: number) => void;
}

/** A rule reads the model and returns problems; it never touches the file. */
export type Rule = (model: CheckpointModel) => Problem[];

/** Reads one file and runs every rule over it. Never throws for bad input: it reports. */
export async function verifyFile(path: string, options: VerifyOptions = {}, extraRules: readonly Rule[] = []): Promise<{ report: Report; model?: CheckpointModel }> {
  let model: CheckpointModel;
  try {
    model = await readCheckpoint(path, { checkCrc: true, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  } catch (error) {
    if (!isCkptError(error)) throw error;
    const { member, offset, path: keyPath } = error.where;
    const where = { ...(member !== undefined ? { member } : {}), ...(offset !== undefined ? { offset } : {}), ...(keyPath !== undefined ? { path: keyPath } : {}) };
    return { report: makeReport(path, "unknown", [problem(error.code, error.message, where)]) };
  }
  const rules: Rule[] = [integrityProblems, (m) => safetyProblems(m, options.allowGlobals), boundsProblems, ...extraRules];
  const problems = rules.flatMap((rule) => rule(model));
  return { report: makeReport(path, model.format, problems), model };
}
