/**
 * The rehearsal's checklist: one line per check, in the order a run goes through them.
 * A check that could not run because an earlier one failed is SKIP, never PASS.
 */

export type LineStatus = "PASS" | "FAIL" | "SKIP";

export interface ChecklistLine {
  id: CheckId;
  title: string;
  status: LineStatus;
  /** One line a user can act on. */
  reason: string;
}

/** Every check, in table order, with its title. */
export const CHECKS = {
  "preflight": "preflight: directory writable, free space, command found",
  "reference-run": "reference run writes at least 2 checkpoints",
  "save-interval": "time between saves is within --max-gap",
  "checkpoints-valid": "every checkpoint loads, is complete and meets --expect",
  "progress": "adjacent checkpoints progress (position up, weights changed, loss recorded)",
  "best": "the checkpoint called best has the best metric",
  "kill-leaves-valid": "SIGKILL mid-run leaves no half-written checkpoint",
  "resume-position": "restarted run continues at the right epoch/step",
  "final-match": "resumed run's final checkpoint equals the reference's",
  "final-newest": "final checkpoint exists, is valid and is the newest",
} as const;

export type CheckId = keyof typeof CHECKS;

export const pass = (id: CheckId, reason: string): ChecklistLine => ({ id, title: CHECKS[id], status: "PASS", reason });
export const fail = (id: CheckId, reason: string): ChecklistLine => ({ id, title: CHECKS[id], status: "FAIL", reason });
export const skip = (id: CheckId, reason: string): ChecklistLine => ({ id, title: CHECKS[id], status: "SKIP", reason });

/** SKIP for every check not yet decided, all for the same reason. */
export function skipRest(decided: readonly ChecklistLine[], reason: string): ChecklistLine[] {
  const done = new Set(decided.map((l) => l.id));
  return (Object.keys(CHECKS) as CheckId[]).filter((id) => !done.has(id)).map((id) => skip(id, reason));
}

/** Lines in CHECKS order, whatever order they were decided in. */
export function inTableOrder(lines: readonly ChecklistLine[]): ChecklistLine[] {
  const order = Object.keys(CHECKS);
  return [...lines].sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}

/** 0 when no line failed, 1 when one did; 3 (unsafe content) takes precedence. */
export function checklistExitCode(lines: readonly ChecklistLine[], unsafe: boolean): 0 | 1 | 3 {
  if (unsafe) return 3;
  return lines.some((l) => l.status === "FAIL") ? 1 : 0;
}
