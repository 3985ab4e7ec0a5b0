/**
 * checkRun on run directories written by real torch: series, weights, loss, best, failed
 * list and progress.
 */
import assert from "node:assert/strict";
import { readFile, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";

import { checkRun, FAILED_LIST_NAME } from "../../src/catalog/check-run.js";
import { makeRunDirs, type RunDirs } from "../helpers/runs.js";

describe("checkRun", () => {
  let runs: RunDirs | undefined;
  const run = (name: string) => join(runs!.dir, name);
  const codes = (problems: ReadonlyArray<{ code: string }>) => problems.map((p) => p.code);

  before(async () => {
    runs = await makeRunDirs("check-run");
  });
  after(async () => {
    if (runs) await rm(runs.dir, { recursive: true, force: true });
  });

  it("flags a best.pt that is not the best, lists the truncated file and reports progress from config", async () => {
    const result = await checkRun(run("main"));
    assert.deepEqual(codes(result.problems), ["BEST_NOT_BEST"]);
    assert.deepEqual(result.problems[0]?.details, {
      metric: "val_loss", mode: "min", claimed: join(run("main"), "best.pt"), claimed_value: 0.7,
      best: join(run("main"), runs!.expected.main.best_val_loss), best_value: 0.5,
    });
    assert.deepEqual(result.failed.map((f) => [f.path, f.verdict, f.code]), [[runs!.expected.main.truncated, "corrupt", "TRUNCATED"]]);
    assert.deepEqual(result.inProgress.map((p) => basename(p)), [".ckpt_epoch_0006.pt.x1y2.tmp"]);
    assert.deepEqual(result.progress, { done: 4, total: 10, unit: "epochs", resumeFrom: join(run("main"), runs!.expected.main.latest) });
    assert.equal(result.exitCode, 1);
  });

  it("writes failed_checkpoints.txt atomically: path, verdict, first problem, one line each", async () => {
    const result = await checkRun(run("main"));
    assert.equal(result.failedList, join(run("main"), FAILED_LIST_NAME));
    const lines = (await readFile(result.failedList!, "utf8")).split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 1);
    const [path, verdict, reason] = lines[0]!.split("\t");
    assert.deepEqual([path, verdict], [runs!.expected.main.truncated, "corrupt"]);
    assert.match(reason ?? "", /^TRUNCATED: /);
    const again = await checkRun(run("main"));
    assert.deepEqual(again.failed, result.failed, "the list itself is not taken for a checkpoint");
  });

  it("lists a NaN checkpoint as failed with NON_FINITE and resumes from the one before", async () => {
    const result = await checkRun(run("nan"), { writeFailedList: false });
    assert.deepEqual(result.failed.map((f) => [f.path, f.code]), [[runs!.expected.nan.nan, "NON_FINITE"]]);
    assert.equal(basename(result.latest ?? ""), runs!.expected.nan.latest);
    await assert.rejects(stat(join(run("nan"), FAILED_LIST_NAME)), { code: "ENOENT" });
  });

  it("lists a checkpoint without optimizer state as incomplete", async () => {
    const result = await checkRun(run("noopt"), { writeFailedList: false });
    assert.deepEqual(result.failed.map((f) => [f.path, f.verdict, f.code]), [["ckpt_epoch_0003.pt", "incomplete", "MISSING_KEY"]]);
    assert.deepEqual(codes(result.problems), []);
  });

  it("reports WEIGHTS_UNCHANGED when two checkpoints an epoch apart hold the same weights", async () => {
    const result = await checkRun(run("stalled"), { writeFailedList: false });
    assert.deepEqual(codes(result.problems), ["WEIGHTS_UNCHANGED"]);
    assert.match(result.problems[0]!.message, new RegExp(`^${runs!.expected.stalled.unchanged} .*${runs!.expected.stalled.previous}`));
    assert.equal(result.exitCode, 1);
  });

  it("warns of a gap wider than the save interval without failing the run", async () => {
    const result = await checkRun(run("gap"), { writeFailedList: false });
    assert.deepEqual(codes(result.problems), ["STEP_GAP"]);
    assert.equal(result.problems[0]?.severity, "warning");
    assert.match(result.problems[0]!.message, /epoch 3 .* -> 5 /);
    assert.equal(result.interval, 1);
    assert.equal(result.exitCode, 0);
  });

  it("reports STEP_NOT_INCREASING when a later file records an earlier epoch", async () => {
    const result = await checkRun(run("restart"), { writeFailedList: false });
    assert.deepEqual(codes(result.problems), ["STEP_NOT_INCREASING"]);
    assert.match(result.problems[0]!.message, new RegExp(`^${runs!.expected.restart.later_name} records epoch 1`));
  });

  it("passes a healthy SGD run: no problems, loss decreasing, progress X/Y, failed list removed", async () => {
    const result = await checkRun(run("sgd"));
    assert.deepEqual(codes(result.problems), []);
    assert.deepEqual(result.failed, []);
    assert.equal(result.loss?.trend, "decreasing");
    assert.deepEqual(result.progress, { done: 3, total: runs!.expected.sgd.total, unit: "epochs", resumeFrom: join(run("sgd"), "ckpt_epoch_0003.pt") });
    assert.equal(result.failedList, undefined);
    assert.equal(result.exitCode, 0);
  });

  it("takes --total over the config, counted in epochs when the checkpoints record them", async () => {
    assert.deepEqual((await checkRun(run("sgd"), { total: 4, writeFailedList: false })).progress?.total, 4);
    const hf = await checkRun(run("hf"), { total: 200, writeFailedList: false });
    assert.deepEqual(hf.progress, { done: 5, total: 200, unit: "epochs", resumeFrom: join(run("hf"), "checkpoint-100") });
  });

  it("checks an HF Trainer run: best_model_checkpoint is the best by eval_loss, tmp-checkpoint-N in progress", async () => {
    const result = await checkRun(run("hf"), { writeFailedList: false });
    assert.deepEqual(codes(result.problems), []);
    assert.deepEqual(result.calledBest.map((p) => basename(p)), [runs!.expected.hf.best_eval_loss]);
    assert.equal(result.unit, "step");
    assert.equal(result.metric?.name, "eval_loss");
    assert.deepEqual(result.inProgress.map((p) => basename(p)), [runs!.expected.hf.in_progress]);
  });

  it("checks a Lightning run by global_step", async () => {
    const result = await checkRun(run("lightning"), { writeFailedList: false });
    assert.equal(result.unit, "step");
    assert.equal(result.interval, 10);
    assert.deepEqual(codes(result.problems), []);
    assert.equal(result.exitCode, 0);
  });
});
