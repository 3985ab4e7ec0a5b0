/**
 * diffCheckpoints against differences torch itself computed (test/python/make_runs.py).
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { diffCheckpoints, type DiffChange } from "../../src/catalog/diff.js";
import { makeRunDirs, type RunDirs } from "../helpers/runs.js";

/** float64 sums over float32 elements agree with torch's to this relative precision. */
const CLOSE = 1e-9;

function assertClose(actual: unknown, expected: number, what: string): void {
  assert.equal(typeof actual, "number", `${what} is a number`);
  assert.ok(Math.abs((actual as number) - expected) <= CLOSE * Math.max(1, Math.abs(expected)), `${what}: ${String(actual)} vs torch ${expected}`);
}

describe("diffCheckpoints", () => {
  let runs: RunDirs | undefined;
  const file = (name: string) => join(runs!.dir, "diff", name);

  before(async () => {
    runs = await makeRunDirs("diff");
  });
  after(async () => {
    if (runs) await rm(runs.dir, { recursive: true, force: true });
  });

  it("finds two saves of the same state identical", async () => {
    const result = await diffCheckpoints(file("a.pt"), file("a_copy.pt"));
    assert.deepEqual({ identical: result.identical, added: result.added, removed: result.removed, changed: result.changed }, { identical: true, added: [], removed: [], changed: [] });
  });

  it("reports epoch 1 -> 2 and changed weights with torch's max abs and relative L2 difference", async () => {
    const result = await diffCheckpoints(file("a.pt"), file("b.pt"));
    assert.equal(result.identical, false);
    assert.deepEqual(result.changed.find((c) => c.path === "epoch"), { path: "epoch", kind: "value", from: 1, to: 2 });
    const weights = result.changed.filter((c) => c.path.startsWith("model_state_dict."));
    assert.equal(weights.length, 4, "every weight and bias moved");
    for (const change of weights) {
      assert.equal(change.kind, "values");
      assert.ok(typeof change.max_abs_diff === "number" && change.max_abs_diff > 0, `${change.path} max_abs_diff > 0`);
      assert.match(String(change.from), /^[0-9a-f]{64}$/);
    }
    for (const [path, truth] of Object.entries(runs!.expected.diff.a_b as Record<string, { max_abs_diff: number; rel_l2: number }>)) {
      const change = result.changed.find((c) => c.path === path);
      assertClose(change?.max_abs_diff, truth.max_abs_diff, `${path} max_abs_diff`);
      assertClose(change?.rel_l2, truth.rel_l2, `${path} rel_l2`);
    }
  });

  it("reports added and removed keys, dtype, shape and scalar changes, and float16/bfloat16/transposed differences", async () => {
    const truth = runs!.expected.diff.kinds;
    const result = await diffCheckpoints(file("kinds.pt"), file("kinds2.pt"));
    assert.deepEqual(result.added, truth.added);
    assert.deepEqual(result.removed, truth.removed);
    const byPath = new Map<string, DiffChange>(result.changed.map((c) => [c.path, c]));
    assert.equal(byPath.has("same"), false);
    assert.equal(byPath.has("name"), false);
    for (const [path, [from, to]] of Object.entries(truth.dtype as Record<string, [string, string]>)) assert.deepEqual(byPath.get(path), { path, kind: "dtype", from, to });
    for (const [path, [from, to]] of Object.entries(truth.shape as Record<string, [number[], number[]]>)) assert.deepEqual(byPath.get(path), { path, kind: "shape", from, to });
    for (const [path, [from, to]] of Object.entries(truth.value as Record<string, [number, number]>)) assert.deepEqual(byPath.get(path), { path, kind: "value", from, to });
    for (const [path, stats] of Object.entries(truth.values as Record<string, { max_abs_diff: number; rel_l2: number }>)) {
      assert.equal(byPath.get(path)?.kind, "values", path);
      assertClose(byPath.get(path)?.max_abs_diff, stats.max_abs_diff, `${path} max_abs_diff`);
      assertClose(byPath.get(path)?.rel_l2, stats.rel_l2, `${path} rel_l2`);
    }
  });
});
