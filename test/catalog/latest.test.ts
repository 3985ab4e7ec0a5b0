/**
 * findLatestCheckpoint / listCheckpoints on run directories written by real torch: the
 * resume choice skips truncated, NaN, incomplete and temp-named checkpoints.
 */
import assert from "node:assert/strict";
import { appendFile, copyFile, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";

import { listCheckpoints } from "../../src/catalog/catalog.js";
import { findLatestCheckpoint, selectCheckpoint } from "../../src/catalog/latest.js";
import { parseExpectation } from "../../src/verify/expectations.js";
import { makeRunDirs, type RunDirs } from "../helpers/runs.js";

describe("findLatestCheckpoint", () => {
  let runs: RunDirs | undefined;
  const run = (name: string) => join(runs!.dir, name);
  const chosen = async (...args: Parameters<typeof findLatestCheckpoint>) => {
    const entry = await findLatestCheckpoint(...args);
    return entry === undefined ? undefined : basename(entry.path);
  };

  before(async () => {
    runs = await makeRunDirs("latest");
  });
  after(async () => {
    if (runs) await rm(runs.dir, { recursive: true, force: true });
  });

  it("skips the truncated newest checkpoint and the temp-named save, choosing the one before", async () => {
    assert.equal(await chosen(run("main")), runs!.expected.main.latest);
    const selection = await selectCheckpoint(run("main"));
    const skipped = selection.skipped.map((e) => [basename(e.path), e.problems[0]?.code]);
    assert.deepEqual(skipped, [[".ckpt_epoch_0006.pt.x1y2.tmp", "IN_PROGRESS"], ["ckpt_epoch_0005.pt", "TRUNCATED"]]);
    assert.equal(selection.chosen?.check, "full");
    assert.equal(selection.chosen?.epoch, 4);
  });

  it("skips a checkpoint whose weights hold NaN/Inf (found by the full check, not the listing)", async () => {
    assert.equal(await chosen(run("nan")), runs!.expected.nan.latest);
    const listing = await listCheckpoints(run("nan"));
    assert.equal(listing.latest && basename(listing.latest.path), runs!.expected.nan.nan, "structure-only listing cannot see NaN");
    const selection = await selectCheckpoint(run("nan"));
    assert.deepEqual(selection.skipped.map((e) => [basename(e.path), e.verdict, e.problems[0]?.code]), [["ckpt_epoch_0003.pt", "corrupt", "NON_FINITE"]]);
  });

  it("skips a checkpoint without optimizer state unless completeness is not required", async () => {
    assert.equal(await chosen(run("noopt")), runs!.expected.noopt.latest);
    assert.equal(await chosen(run("noopt"), { requireComplete: false }), runs!.expected.noopt.latest_any_kind);
  });

  it("chooses the best by a metric the checkpoints record", async () => {
    assert.equal(await chosen(run("main"), { best: { metric: "val_loss", mode: "min" } }), runs!.expected.main.best_val_loss);
    assert.equal(await chosen(run("main"), { best: { metric: "val_loss", mode: "max" } }), "ckpt_epoch_0001.pt");
    assert.equal(await chosen(run("main"), { best: { metric: "no_such_metric", mode: "min" } }), undefined);
  });

  it("applies --expect: a value that differs disqualifies every checkpoint", async () => {
    assert.equal(await chosen(run("main"), { expect: [parseExpectation("config.epochs=10")] }), "ckpt_epoch_0004.pt");
    assert.equal(await chosen(run("main"), { expect: [parseExpectation("config.epochs=11")] }), undefined);
  });

  it("orders HF Trainer checkpoint-N/ directories by global_step and skips tmp-checkpoint-N/", async () => {
    const listing = await listCheckpoints(run("hf"));
    assert.deepEqual(listing.entries.filter((e) => !e.inProgress).map((e) => basename(e.path)), runs!.expected.hf.order);
    assert.deepEqual(listing.entries.filter((e) => !e.inProgress).map((e) => e.step), runs!.expected.hf.steps);
    assert.equal(listing.entries.find((e) => e.inProgress)?.path, run(join("hf", runs!.expected.hf.in_progress)));
    assert.equal(await chosen(run("hf")), runs!.expected.hf.latest);
    assert.equal(await chosen(run("hf"), { best: { metric: "eval_loss", mode: "min" } }), runs!.expected.hf.best_eval_loss);
  });

  it("skips an HF checkpoint directory without optimizer.pt", async () => {
    const newest = run(join("hf", runs!.expected.hf.latest));
    await rm(join(newest, "optimizer.pt"));
    try {
      const selection = await selectCheckpoint(run("hf"));
      assert.equal(selection.chosen && basename(selection.chosen.path), "checkpoint-20");
      assert.deepEqual(selection.skipped.find((e) => e.path === newest)?.problems.map((p) => p.code), ["PART_MISSING"]);
    } finally {
      await copyFile(join(run("hf"), "checkpoint-20", "optimizer.pt"), join(newest, "optimizer.pt"));
    }
  });

  it("orders Lightning checkpoints by global_step", async () => {
    const listing = await listCheckpoints(run("lightning"));
    const series = listing.entries.filter((e) => basename(e.path) !== "last.ckpt");
    assert.deepEqual(series.map((e) => basename(e.path)), runs!.expected.lightning.order);
    assert.deepEqual(series.map((e) => e.step), runs!.expected.lightning.steps);
  });

  it("prefers the furthest training progress over the file written last", async () => {
    assert.equal(await chosen(run("restart")), runs!.expected.restart.latest);
  });

  it("never chooses a file that grows while it is looked at", async () => {
    const newest = join(run("sgd"), "ckpt_epoch_0003.pt");
    const timer = setInterval(() => void appendFile(newest, Buffer.alloc(16)), 5);
    try {
      const selection = await selectCheckpoint(run("sgd"), { settleMs: 100 });
      assert.notEqual(selection.chosen?.path, newest);
      assert.equal(selection.skipped[0]?.path, newest);
      assert.equal(selection.skipped[0]?.inProgress, true);
    } finally {
      clearInterval(timer);
    }
  });

  it("returns undefined with a reason when nothing qualifies", async () => {
    const selection = await selectCheckpoint(run("diff"), { expect: [parseExpectation("epoch=99")] });
    assert.equal(selection.chosen, undefined);
    assert.match(selection.reason ?? "", /none of the 5 checkpoints/);
  });
});
