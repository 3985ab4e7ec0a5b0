/**
 * OPTIMIZER_STATE_INCOMPLETE on optimizer states written by real torch 1.13, each with one
 * piece taken away; and `--kind training` on the shared missing_optimizer.pt.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { contentCheckpoints, verifyJson, type ReportJson } from "../helpers/content.js";

const FIXTURES = "../shared/fixtures/torch";
let dir = "";
before(async () => {
  dir = await contentCheckpoints();
});

function codes(report: ReportJson | undefined): string[] {
  return (report?.problems ?? []).map((p) => p.code);
}

describe("optimizer state (checked whenever one is present)", () => {
  for (const file of ["adam_ok.pt", "adamw_amsgrad_ok.pt", "sgd_momentum_ok.pt", "sgd_plain_ok.pt", "nanogpt.pt", "lightning.ckpt"]) {
    it(`says ${file} is valid`, async () => {
      const { code, files } = await verifyJson([`${dir}/${file}`]);
      assert.deepEqual(files[0]?.problems, []);
      assert.equal(code, 0);
    });
  }

  it("reports the Adam state of parameter 1 (fc.weight) that lacks exp_avg_sq, and exits 1", async () => {
    const { code, files } = await verifyJson([`${dir}/adam_missing_exp_avg_sq.pt`]);
    const report = files[0]!;
    assert.equal(report.verdict, "incomplete");
    assert.deepEqual(codes(report), ["OPTIMIZER_STATE_INCOMPLETE"]);
    assert.deepEqual(report.problems[0]!.details, { optimizer: "optimizer_state_dict", group: 0, param: "1", missing: ["exp_avg_sq"] });
    assert.equal(report.problems[0]!.where.path, "optimizer_state_dict.state.1");
    assert.match(report.problems[0]!.message, /fc\.weight/);
    assert.equal(code, 1);
  });

  it("reports max_exp_avg_sq missing from AdamW with amsgrad=True", async () => {
    const { files } = await verifyJson([`${dir}/adamw_amsgrad_missing_max.pt`]);
    assert.deepEqual(codes(files[0]), ["OPTIMIZER_STATE_INCOMPLETE"]);
    assert.deepEqual(files[0]!.problems[0]!.details?.missing, ["max_exp_avg_sq"]);
    assert.equal(files[0]!.problems[0]!.details?.param, "0");
  });

  it("reports momentum_buffer missing from SGD with momentum", async () => {
    const { files } = await verifyJson([`${dir}/sgd_momentum_missing_buffer.pt`]);
    assert.deepEqual(codes(files[0]), ["OPTIMIZER_STATE_INCOMPLETE"]);
    assert.deepEqual(files[0]!.problems[0]!.details?.missing, ["momentum_buffer"]);
    assert.equal(files[0]!.problems[0]!.details?.param, "2");
  });

  it("warns about a parameter of a param_group with no state at all (frozen parameters have none), keeping the verdict", async () => {
    const { code, files } = await verifyJson([`${dir}/param_without_state.pt`]);
    assert.deepEqual(codes(files[0]), ["OPTIMIZER_STATE_INCOMPLETE"]);
    assert.equal(files[0]!.problems[0]!.severity, "warning");
    assert.deepEqual(files[0]!.problems[0]!.details, { optimizer: "optimizer_state_dict", group: 0, param: "3", missing: "state" });
    assert.match(files[0]!.problems[0]!.message, /bn\.weight/);
    assert.equal(files[0]!.verdict, "valid");
    assert.equal(code, 0);
  });

  it("reports state shaped unlike its parameter, mapping index 1 to fc.weight past the BatchNorm buffers", async () => {
    const { files } = await verifyJson([`${dir}/shape_mismatch.pt`]);
    const problems = files[0]!.problems;
    assert.deepEqual(problems.map((p) => p.where.path), ["optimizer_state_dict.state.1.exp_avg", "optimizer_state_dict.state.1.exp_avg_sq"]);
    assert.deepEqual(problems.map((p) => [p.details?.shape, p.details?.expected]), [[[16, 8], [8, 16]], [[16, 8], [8, 16]]]);
    assert.equal(files[0]!.verdict, "incomplete");
  });

  it("accepts an Adam state saved before the first step (no state at all is what the optimizer had)", async () => {
    const { code, files } = await verifyJson([`${dir}/never_stepped.pt`]);
    assert.deepEqual(files[0]!.problems, []);
    assert.equal(code, 0);
  });

  it("warns once about a param_group without any state when the other group has state", async () => {
    const { files } = await verifyJson([`${dir}/group_without_state.pt`]);
    assert.deepEqual(files[0]!.problems.map((p) => [p.code, p.severity]), [["OPTIMIZER_STATE_INCOMPLETE", "warning"]]);
    assert.deepEqual(files[0]!.problems[0]!.details, { optimizer: "optimizer", group: 1, params: 2 });
  });
});

describe("--kind training", () => {
  it("says missing_optimizer.pt is incomplete (MISSING_KEY for the optimizer) and exits 1", async () => {
    const { code, files } = await verifyJson(["--kind", "training", `${FIXTURES}/missing_optimizer.pt`]);
    assert.equal(files[0]!.verdict, "incomplete");
    assert.deepEqual(codes(files[0]), ["MISSING_KEY"]);
    assert.equal(files[0]!.problems[0]!.details?.part, "optimizer");
    assert.equal(code, 1);
  });

  it("says missing_optimizer.pt is valid without it", async () => {
    const { code, files } = await verifyJson([`${FIXTURES}/missing_optimizer.pt`]);
    assert.equal(files[0]!.verdict, "valid");
    assert.equal(code, 0);
  });

  it("accepts training checkpoints of every layout: plain, nanoGPT, Lightning", async () => {
    const { code, files } = await verifyJson(["--kind", "training", `${FIXTURES}/train_adam_v1.pt`, `${dir}/nanogpt.pt`, `${dir}/lightning.ckpt`]);
    assert.deepEqual(files.map((f) => f.problems), [[], [], []]);
    assert.equal(code, 0);
  });

  it("asks a bare state_dict for an optimizer and a step or epoch", async () => {
    const { files } = await verifyJson(["--kind", "training", `${dir}/plain_state_dict.pt`]);
    assert.deepEqual(files[0]!.problems.map((p) => p.details?.part), ["optimizer", "step"]);
  });

  it("refuses an unknown kind with exit 2, naming the option and the value", async () => {
    const { code, stderr } = await verifyJson(["--kind", "inference", `${FIXTURES}/train_adam_v1.pt`]);
    assert.equal(code, 2);
    assert.match(stderr, /--kind "inference"/);
  });
});
