/**
 * NON_FINITE from the deep scan's counts (`verify --deep`): a NaN or Inf in the weights or
 * the optimizer's moments means the run diverged before this save, and resuming from it
 * only carries the divergence on. The counting happens reader-side (formats/finite-scan.ts).
 */
import type { CheckpointModel } from "../formats/model.js";
import { problem, type Problem } from "./report.js";

/** Tensors named one by one before the rest are summed up in one problem. */
const MAX_LISTED = 50;

export function finiteRule(model: CheckpointModel): Problem[] {
  const facts = model.finite;
  if (facts === undefined) return [];
  const listed: Problem[] = facts.nonFinite.slice(0, MAX_LISTED).map((t) => {
    const counts = [[t.nan, "NaN"], [t.posInf, "+Inf"], [t.negInf, "-Inf"]].filter(([n]) => n !== 0).map(([n, what]) => `${n} ${what}`);
    return {
      ...problem("NON_FINITE", `${t.path}: ${counts.join(", ")} among ${t.elements} ${t.dtype} elements`, { path: t.path }),
      details: { dtype: t.dtype, elements: t.elements, nan: t.nan, pos_inf: t.posInf, neg_inf: t.negInf },
    };
  });
  const rest = facts.nonFinite.slice(MAX_LISTED);
  if (rest.length > 0) {
    const nan = rest.reduce((s, t) => s + t.nan, 0);
    const inf = rest.reduce((s, t) => s + t.posInf + t.negInf, 0);
    listed.push({ ...problem("NON_FINITE", `... and ${rest.length} more tensors with ${nan} NaN and ${inf} Inf in all`), details: { tensors: rest.length, nan, inf } });
  }
  return listed;
}
