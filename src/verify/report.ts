import type { CheckpointFormat } from "../formats/model.js";
import { codeInfo, VERDICT_PRECEDENCE, type Severity, type Verdict } from "./codes.js";

/** Where a problem is: any of file, zip member, byte offset, key path. */
export interface ProblemWhere {
  member?: string;
  offset?: number;
  path?: string;
}

export interface Problem {
  code: string;
  severity: Severity;
  message: string;
  where: ProblemWhere;
  /** Machine-readable values behind the message (e.g. `expected`/`found`, NaN counts). */
  details?: Record<string, unknown>;
}

export interface Report {
  path: string;
  format: CheckpointFormat | "unknown";
  verdict: Verdict;
  problems: Problem[];
}

export function problem(code: string, message: string, where: ProblemWhere = {}, severity?: Severity): Problem {
  return { code, severity: severity ?? codeInfo(code).severity, message, where };
}

/** The verdict a set of problems gives: the strongest verdict among the errors. */
export function verdictOf(problems: readonly Problem[]): Verdict {
  let best = VERDICT_PRECEDENCE.length - 1;
  for (const p of problems) {
    if (p.severity !== "error") continue;
    best = Math.min(best, VERDICT_PRECEDENCE.indexOf(codeInfo(p.code).verdict));
  }
  return VERDICT_PRECEDENCE[best] ?? "valid";
}

export function makeReport(path: string, format: Report["format"], problems: Problem[]): Report {
  return { path, format, verdict: verdictOf(problems), problems };
}

/** Exit code of DESIGN.md: 3 when anything is unsafe, 1 when anything else is not valid. */
export function exitCodeOf(reports: readonly Report[]): 0 | 1 | 3 {
  if (reports.some((r) => r.verdict === "unsafe")) return 3;
  if (reports.some((r) => r.verdict !== "valid")) return 1;
  return 0;
}
