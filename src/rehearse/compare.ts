import { diffCheckpoints, type DiffChange, type DiffResult } from "../catalog/diff.js";
import { FileSource } from "../formats/file-source.js";
import { readCheckpoint } from "../formats/open.js";
import { isFloatDType, readFloatElements } from "../formats/tensor-elements.js";
import { walkLeaves } from "../formats/tree.js";

/**
 * The resumed run's final checkpoint against the reference run's: equal bit for bit, or
 * within a tolerance (nondeterministic kernels), or different, and then why, read from
 * which leaves differ (catalog/diff.ts names them under DESIGN.md's dotted paths).
 */

export interface FinalComparison {
  outcome: "identical" | "within-tolerance" | "different";
  /** Largest element difference over the changed float tensors and numbers (0 when identical). */
  maxAbsDiff: number;
  /** Where maxAbsDiff was found. */
  maxAt?: string;
  /** Every differing leaf path: changed, added and removed. */
  differing: string[];
  /** What the differences point to, in one sentence, when different. */
  diagnosis?: string;
  diff: DiffResult;
}

export async function compareFinals(reference: string, resumed: string, tolerance: number): Promise<FinalComparison> {
  const diff = await diffCheckpoints(reference, resumed);
  const differing = [...diff.changed.map((c) => c.path), ...diff.added, ...diff.removed];
  let maxAbsDiff = 0;
  let maxAt: string | undefined;
  let numericOnly = diff.added.length === 0 && diff.removed.length === 0;
  for (const change of diff.changed) {
    const d = numericDifference(change);
    if (d === undefined) {
      numericOnly = false;
      continue;
    }
    if (d > maxAbsDiff || maxAt === undefined) [maxAbsDiff, maxAt] = [d, change.path];
  }
  const base = { maxAbsDiff, differing, diff, ...(maxAt !== undefined ? { maxAt } : {}) };
  if (diff.identical) return { outcome: "identical", ...base };
  if (numericOnly && maxAbsDiff <= tolerance) return { outcome: "within-tolerance", ...base };
  const stepPath = diff.changed.find((c) => OPTIMIZER_STEP.test(c.path))?.path;
  const steps = stepPath === undefined ? undefined : { path: stepPath, reference: await readScalar(reference, stepPath), resumed: await readScalar(resumed, stepPath) };
  return { outcome: "different", ...base, diagnosis: diagnose(diff, steps) };
}

/** An optimizer step count in both files, to tell "not restored" (fewer) from "repeated training" (more). */
export interface StepCounts {
  path: string;
  reference: number | undefined;
  resumed: number | undefined;
}

/** Top-level counters a training loop keeps its position in. */
const POSITION_KEYS = new Set(["epoch", "step", "global_step", "iteration", "iter"]);
/** `optimizer_state_dict.state.3.step`, `optimizer.state.0.step`: Adam-style per-parameter step counts. */
const OPTIMIZER_STEP = /^optim[a-z_]*\.state\.[^.]+\.step$/i;
const UNDER_OPTIMIZER = /^optim[a-z_]*\./i;
const UNDER_RNG = /(^|\.)(rng|random|generator)[a-z_]*(\.|$)/i;

/**
 * The likeliest cause, most specific first: a position counter that differs means the
 * resumed run restarted its count; an optimizer step count lower than the reference's
 * means the optimizer started fresh (which also moves the weights), a higher one that
 * training was repeated; only optimizer (or RNG) state differing means it was not restored.
 */
export function diagnose(diff: DiffResult, steps?: StepCounts): string {
  const changed = diff.changed;
  const position = changed.find((c) => POSITION_KEYS.has(c.path) && c.kind === "value");
  if (position) return `${position.path} counter restarted: the reference ends at ${fmt(position.from)}, the resumed run at ${fmt(position.to)}`;
  const paths = [...changed.map((c) => c.path), ...diff.added, ...diff.removed];
  if (steps?.reference !== undefined && steps.resumed !== undefined && steps.reference !== steps.resumed) {
    const counts = `${steps.path} is ${fmt(steps.resumed)}, the reference's ${fmt(steps.reference)}`;
    return steps.resumed < steps.reference
      ? `optimizer state was not restored: its step count restarted (${counts}), so ${describeFirst(paths)} differ`
      : `the resumed run took more optimizer steps than the reference (${counts}): it repeated training, so its epoch/step counter restarted`;
  }
  if (paths.every((p) => UNDER_OPTIMIZER.test(p))) return `optimizer state was not restored: only optimizer state differs (${describeFirst(paths)})`;
  if (paths.every((p) => UNDER_RNG.test(p))) return `RNG state was not restored: only ${describeFirst(paths)} differs`;
  const worst = changed.find((c) => c.max_abs_diff !== undefined);
  return `${describeFirst(paths)} differ${worst ? ` (${worst.path}: max |diff| ${fmt(worst.max_abs_diff)})` : ""}`;
}

/** "a, b, c (+4 more)" */
function describeFirst(paths: readonly string[]): string {
  const shown = paths.slice(0, 3).join(", ");
  return paths.length > 3 ? `${shown} (+${paths.length - 3} more)` : shown;
}

/** |b - a| of a float tensor (diff's max_abs_diff) or of two numbers; undefined for anything else. */
function numericDifference(change: DiffChange): number | undefined {
  if (change.kind === "values") {
    if (change.non_finite_changed !== undefined && change.non_finite_changed > 0) return undefined;
    return typeof change.max_abs_diff === "number" ? change.max_abs_diff : undefined;
  }
  if (change.kind === "value" && typeof change.from === "number" && typeof change.to === "number") return Math.abs(change.to - change.from);
  return undefined;
}

function fmt(value: unknown): string {
  return typeof value === "number" ? String(Number(value.toPrecision(4))) : JSON.stringify(value);
}

/** A number leaf, or the single element of a float tensor, at `path`; undefined when absent or larger. */
async function readScalar(file: string, path: string): Promise<number | undefined> {
  const model = await readCheckpoint(file, { checkCrc: false });
  const tensor = model.tensors.find((t) => t.path === path);
  if (!tensor) {
    const leaf = [...walkLeaves(model.root)].find((l) => l.path === path);
    return leaf?.kind === "value" && (typeof leaf.value === "number" || typeof leaf.value === "bigint") ? Number(leaf.value) : undefined;
  }
  if (!isFloatDType(tensor.dtype) || tensor.shape.reduce((a, b) => a * b, 1) !== 1) return undefined;
  const source = await FileSource.open(file, model.fileSize);
  try {
    for await (const chunk of readFloatElements(source, tensor)) return chunk[0];
    return undefined;
  } finally {
    await source.close();
  }
}
