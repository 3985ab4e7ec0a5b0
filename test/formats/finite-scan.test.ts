/** The deep scan reader-side: the same counts on one thread and on worker threads, zip and legacy. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { scanFiniteFile } from "../../src/formats/finite-scan.js";
import { readCheckpoint } from "../../src/formats/open.js";
import { contentCheckpoints } from "../helpers/content.js";

let dir = "";
before(async () => {
  dir = await contentCheckpoints();
});

describe("scanFiniteFile", () => {
  for (const file of ["nonfinite.pt", "nonfinite_legacy.pt"]) {
    it(`counts ${file} the same on 1, 2 and 3 threads, reporting progress up to the total`, async () => {
      const model = await readCheckpoint(`${dir}/${file}`, { checkCrc: false });
      const progress: Array<[number, number]> = [];
      const single = await scanFiniteFile(model, { workers: 1, onProgress: (done, total) => progress.push([done, total]) });
      assert.deepEqual(await scanFiniteFile(model, { workers: 2 }), single);
      assert.deepEqual(await scanFiniteFile(model, { workers: 3 }), single);
      // Every float tensor, the view `tail` included; the int64 tensor `ints` is not read.
      assert.equal(single.scannedTensors, 8);
      assert.deepEqual(single.nonFinite.map((t) => t.path), ["weights.f32", "weights.f16", "weights.bf16", "weights.f64", "with_nan", "big"]);
      assert.deepEqual(progress.at(-1), [single.scannedBytes, single.scannedBytes]);
    });
  }

  it("charges a view only with what lies in its own element range", async () => {
    const model = await readCheckpoint(`${dir}/nonfinite.pt`, { checkCrc: false });
    const facts = await scanFiniteFile(model, { workers: 1 });
    assert.equal(facts.nonFinite.find((t) => t.path === "with_nan")?.nan, 2);
    assert.equal(facts.nonFinite.find((t) => t.path === "tail"), undefined);
  });
});
