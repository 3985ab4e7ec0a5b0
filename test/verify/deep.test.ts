/** `verify --deep`: NaN and Inf counted in the bytes of every floating-point tensor torch wrote. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { contentCheckpoints, verifyJson, type ReportJson } from "../helpers/content.js";

let dir = "";
before(async () => {
  dir = await contentCheckpoints();
});

/** What make_content.py put into nonfinite.pt; `tail` views the NaN-free half of `with_nan`. */
const EXPECTED: Record<string, { dtype: string; elements: number; nan: number; pos_inf: number; neg_inf: number }> = {
  "weights.f32": { dtype: "float32", elements: 1000, nan: 3, pos_inf: 2, neg_inf: 1 },
  "weights.f16": { dtype: "float16", elements: 257, nan: 1, pos_inf: 0, neg_inf: 1 },
  "weights.bf16": { dtype: "bfloat16", elements: 300, nan: 4, pos_inf: 1, neg_inf: 0 },
  "weights.f64": { dtype: "float64", elements: 77, nan: 1, pos_inf: 2, neg_inf: 0 },
  with_nan: { dtype: "float32", elements: 200, nan: 2, pos_inf: 0, neg_inf: 0 },
  big: { dtype: "float32", elements: 5_000_000, nan: 4, pos_inf: 0, neg_inf: 0 },
};

function nonFinite(report: ReportJson): Record<string, unknown> {
  return Object.fromEntries(report.problems.filter((p) => p.code === "NON_FINITE").map((p) => [p.where.path, p.details]));
}

describe("verify --deep", () => {
  for (const file of ["nonfinite.pt", "nonfinite_legacy.pt"]) {
    it(`reports NON_FINITE with exact counts per float32/float16/bfloat16/float64 tensor in ${file}, and exits 1`, async () => {
      const { code, files } = await verifyJson(["--deep", `${dir}/${file}`]);
      const report = files[0]!;
      assert.deepEqual(nonFinite(report), EXPECTED);
      assert.equal(report.verdict, "corrupt");
      assert.equal(code, 1);
    });
  }

  it("finds nothing in the same tensors once every value is finite", async () => {
    const { code, files } = await verifyJson(["--deep", `${dir}/finite.pt`, `${dir}/adam_ok.pt`, "../shared/fixtures/torch/dtypes_views.pt"]);
    assert.deepEqual(files.map((f) => f.problems), [[], [], []]);
    assert.equal(code, 0);
  });

  it("does not read tensor values without --deep", async () => {
    const { code, files } = await verifyJson([`${dir}/nonfinite.pt`]);
    assert.deepEqual(files[0]!.problems, []);
    assert.equal(code, 0);
  });
});
