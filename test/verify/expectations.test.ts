/** `--expect PATH=VALUE` and `--require KEY` on real torch checkpoints, and the parser they share with `latest`. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { isCkptError } from "../../src/errors.js";
import { parseExpectation, sameValue } from "../../src/verify/expectations.js";
import { parseRequiredKey } from "../../src/verify/requirements.js";
import { contentCheckpoints, verifyJson } from "../helpers/content.js";

const TRAIN = "../shared/fixtures/torch/train_adam_v1.pt";
let nested = "";
before(async () => {
  nested = `${await contentCheckpoints()}/nested_config.pt`;
});

describe("parseExpectation", () => {
  it("reads VALUE as JSON when it parses and as a bare string otherwise", () => {
    assert.deepEqual(parseExpectation("config.hidden_dim=768"), { path: "config.hidden_dim", expected: 768 });
    assert.deepEqual(parseExpectation("w.shape=[768,128]"), { path: "w.shape", expected: [768, 128] });
    assert.deepEqual(parseExpectation("flag=true"), { path: "flag", expected: true });
    assert.deepEqual(parseExpectation('name="768"'), { path: "name", expected: "768" });
    assert.deepEqual(parseExpectation("dataset=kinematics"), { path: "dataset", expected: "kinematics" });
    assert.deepEqual(parseExpectation("expr=a=b"), { path: "expr", expected: "a=b" });
  });

  for (const bad of ["hidden_dim", "=768", ".a=1", "a..b=1", "a.=1"]) {
    it(`refuses ${JSON.stringify(bad)} with a USAGE error naming --expect and the value`, () => {
      assert.throws(() => parseExpectation(bad), (error: unknown) => isCkptError(error) && error.code === "USAGE" && error.message.includes(`--expect ${JSON.stringify(bad)}`));
    });
  }

  it("compares numbers numerically and containers structurally", () => {
    assert.ok(sameValue(768, 768.0));
    assert.ok(!sameValue(768, "768"));
    assert.ok(sameValue([768, 128], [768, 128]));
    assert.ok(!sameValue([768, 128], [128, 768]));
    assert.ok(sameValue({ a: [1, { b: "x" }] }, { a: [1, { b: "x" }] }));
    assert.ok(!sameValue({ a: 1 }, { a: 1, b: 2 }));
  });
});

describe("verify --expect", () => {
  it("passes when number, tensor shape, dtype and string all match, and exits 0", async () => {
    const { code, files } = await verifyJson([
      "--expect", "config.hidden_dim=16", "--expect", "model_state_dict.fc.weight.shape=[8,16]",
      "--expect", "model_state_dict.fc.weight.dtype=float32", "--expect", "config.kind=synthetic", "--expect", "epoch=3.0", TRAIN,
    ]);
    assert.deepEqual(files[0]!.problems, []);
    assert.equal(code, 0);
  });

  it("reports EXPECTATION_FAILED with expected and found for a number, and exits 1", async () => {
    const { code, files } = await verifyJson(["--expect", "config.hidden_dim=768", TRAIN]);
    const [p] = files[0]!.problems;
    assert.equal(p?.code, "EXPECTATION_FAILED");
    assert.equal(p?.where.path, "config.hidden_dim");
    assert.deepEqual(p?.details, { expected: 768, found: 16 });
    assert.equal(files[0]!.verdict, "incomplete");
    assert.equal(code, 1);
  });

  it("reports a tensor shape that differs", async () => {
    const { files } = await verifyJson(["--expect", "model_state_dict.fc.weight.shape=[768,128]", TRAIN]);
    assert.deepEqual(files[0]!.problems[0]?.details, { expected: [768, 128], found: [8, 16] });
  });

  it("reports a string that differs", async () => {
    const { files } = await verifyJson(["--expect", "dataset=imagenet", nested]);
    assert.deepEqual(files[0]!.problems[0]?.details, { expected: "imagenet", found: "kinematics" });
  });

  it("reads nested dicts and lists, and whole containers", async () => {
    const pass = await verifyJson(["--expect", "config.model.dims.0=768", "--expect", "config.model.dims=[768,128]", "--expect", 'config.model={"dims":[768,128],"name":"tiny"}', "--expect", "dataset=kinematics", nested]);
    assert.deepEqual(pass.files[0]!.problems, []);
    const fail = await verifyJson(["--expect", "config.model.dims.1=256", nested]);
    assert.deepEqual(fail.files[0]!.problems[0]?.details, { expected: 256, found: 128 });
  });

  it("reports a path that is not there as found nothing", async () => {
    const { files } = await verifyJson(["--expect", "config.nope=1", TRAIN]);
    assert.deepEqual(files[0]!.problems[0]?.details, { expected: 1, found: null, missing: true });
  });

  it("exits 2 on a malformed --expect before reading any file", async () => {
    const { code, stderr, files } = await verifyJson(["--expect", "hidden_dim", TRAIN]);
    assert.equal(code, 2);
    assert.deepEqual(files, []);
    assert.match(stderr, /USAGE: --expect "hidden_dim"/);
  });
});

describe("verify --require", () => {
  it("passes when every key is there, dotted paths into state_dict keys included", async () => {
    const { code, files } = await verifyJson(["--require", "optimizer_state_dict", "--require", "epoch", "--require", "model_state_dict.bn.running_mean", TRAIN]);
    assert.deepEqual(files[0]!.problems, []);
    assert.equal(code, 0);
  });

  it("reports MISSING_KEY for each absent key, and exits 1", async () => {
    const { code, files } = await verifyJson(["--require", "optimizer_state_dict", "--require", "scheduler", "--require", "config.lr", TRAIN]);
    assert.deepEqual(files[0]!.problems.map((p) => [p.code, p.where.path]), [["MISSING_KEY", "scheduler"], ["MISSING_KEY", "config.lr"]]);
    assert.equal(files[0]!.verdict, "incomplete");
    assert.equal(code, 1);
  });

  it("refuses an empty key segment", () => {
    assert.throws(() => parseRequiredKey("a..b"), (error: unknown) => isCkptError(error) && error.code === "USAGE");
  });
});
