/**
 * Hugging Face-style sharded weights written with real torch (safetensors shards laid out as
 * safetensors' serializer writes them, `.bin` shards by torch.save) and their index JSON; each
 * case damages a copy the way a broken upload, copy or save does.
 */
import assert from "node:assert/strict";
import { readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { detectShardedDir, readHfIndex, shardNameProblem } from "../../../src/formats/sharded/index.js";
import { getPath } from "../../../src/formats/tree.js";
import { verifyShardedDir } from "../../../src/verify/sharded/index.js";
import { collectCheckpointTargets } from "../../../src/verify/collect-paths.js";
import type { Problem } from "../../../src/verify/report.js";
import { requireRule } from "../../../src/verify/requirements.js";
import { copyOf, firstTensorByte, flipByte, makeShardedCheckpoints, truncateTo, type ShardedCheckpoints } from "../../helpers/sharded.js";

const codes = (problems: readonly Problem[]) => problems.filter((p) => p.severity === "error").map((p) => p.code);

/** The two layouts under test: directory, index file, and a shard to damage. */
const LAYOUTS = [
  { dir: "hf-safetensors", index: "model.safetensors.index.json", shard: "model-00002-of-00003.safetensors", shards: 3 },
  { dir: "hf-bin", index: "pytorch_model.bin.index.json", shard: "pytorch_model-00002-of-00002.bin", shards: 2 },
] as const;

async function editIndex(dir: string, index: string, edit: (weightMap: Record<string, string>) => void): Promise<void> {
  const json = JSON.parse(await readFile(join(dir, index), "utf8"));
  edit(json.weight_map);
  await writeFile(join(dir, index), JSON.stringify(json));
}

describe("Hugging Face sharded weights (index JSON + shards)", () => {
  let generated: ShardedCheckpoints;

  before(async () => {
    generated = await makeShardedCheckpoints(["hf"]);
  });

  after(async () => {
    if (generated !== undefined) await rm(generated.dir, { recursive: true, force: true });
  });

  for (const layout of LAYOUTS) {
    describe(layout.dir, () => {
      const weightMap = (): Record<string, string> => generated.summary.hf[layout.dir === "hf-bin" ? "bin_weight_map" : "safetensors_weight_map"];

      it("reads the index's weight map as written", async () => {
        const index = await readHfIndex(join(generated.dir, layout.dir, layout.index));
        assert.deepEqual(Object.fromEntries(index.weightMap), weightMap());
        assert.deepEqual(index.defects, []);
        assert.equal(typeof index.totalSize, "number");
      });

      it("is detected as one checkpoint made of the index and its shards", async () => {
        const found = await detectShardedDir(join(generated.dir, layout.dir));
        assert.equal(found?.kind, "hf-sharded");
        assert.equal(found.files.length, layout.shards + 1);
      });

      it("verifies as valid, with every tensor of every shard in one model", async () => {
        const { report, model } = await verifyShardedDir(join(generated.dir, layout.dir));
        assert.deepEqual(report.problems, []);
        assert.equal(report.format, "hf-sharded");
        assert.ok(model);
        assert.deepEqual(model.tensors.map((t) => t.path).sort(), Object.keys(weightMap()).sort());
        assert.deepEqual(getPath(model.root, "lm_head.weight") !== undefined, true);
        const required = await verifyShardedDir(join(generated.dir, layout.dir), {}, [requireRule(["model.layers.0.weight", "lm_head.weight"])]);
        assert.equal(required.report.verdict, "valid");
      });

      it("reports SHARD_MISSING naming the shard when one is deleted", async () => {
        const dir = await copyOf(generated, layout.dir);
        await unlink(join(dir, layout.shard));
        const { report } = await verifyShardedDir(dir);
        assert.deepEqual(codes(report.problems), ["SHARD_MISSING"]);
        assert.equal(report.verdict, "incomplete");
        assert.equal(report.problems[0]?.details?.shard, layout.shard);
      });

      it("reports SHARD_CORRUPT with the shard's own code when a shard is truncated", async () => {
        const dir = await copyOf(generated, layout.dir);
        await truncateTo(join(dir, layout.shard), 0.6, (await stat(join(dir, layout.shard))).size);
        const { report } = await verifyShardedDir(dir);
        assert.equal(report.verdict, "corrupt");
        assert.equal(codes(report.problems)[0], "SHARD_CORRUPT");
        assert.equal(report.problems[0]?.details?.shard, layout.shard);
        assert.equal(typeof report.problems[0]?.details?.code, "string");
      });

      it("reports SHARD_COVERAGE when the index names a tensor the shard does not hold", async () => {
        const dir = await copyOf(generated, layout.dir);
        await editIndex(dir, layout.index, (map) => { map["model.ghost.weight"] = layout.shard; });
        const { report } = await verifyShardedDir(dir);
        assert.deepEqual(codes(report.problems), ["SHARD_COVERAGE"]);
        assert.match(report.problems[0]?.message ?? "", /model\.ghost\.weight/);
      });

      it("reports SHARD_COVERAGE when a shard holds a tensor the index does not name", async () => {
        const dir = await copyOf(generated, layout.dir);
        const extra = Object.entries(weightMap()).find(([, shard]) => shard === layout.shard)![0];
        await editIndex(dir, layout.index, (map) => { delete map[extra]; });
        const { report } = await verifyShardedDir(dir);
        assert.deepEqual(codes(report.problems), ["SHARD_COVERAGE"]);
        assert.match(report.problems[0]?.message ?? "", new RegExp(extra.replaceAll(".", "\\.")));
      });

      it("reports SHARD_COVERAGE when the index places a tensor in another shard than the one holding it", async () => {
        const dir = await copyOf(generated, layout.dir);
        const [moved] = Object.entries(weightMap()).find(([, shard]) => shard === layout.shard)!;
        const other = Object.values(weightMap()).find((shard) => shard !== layout.shard)!;
        await editIndex(dir, layout.index, (map) => { map[moved] = other; });
        const { report } = await verifyShardedDir(dir);
        assert.ok(codes(report.problems).length >= 2 && codes(report.problems).every((c) => c === "SHARD_COVERAGE"));
      });

      it("refuses shard names that leave the directory (SHARD_PATH_ESCAPE, unsafe)", async () => {
        const dir = await copyOf(generated, layout.dir);
        await editIndex(dir, layout.index, (map) => { map["evil.a"] = "../elsewhere.bin"; map["evil.b"] = "/etc/passwd"; });
        const { report } = await verifyShardedDir(dir);
        assert.deepEqual(codes(report.problems), ["SHARD_PATH_ESCAPE", "SHARD_PATH_ESCAPE"]);
        assert.equal(report.verdict, "unsafe");
      });

      it("reports SHARD_INDEX_MALFORMED for an index that is not JSON or lacks weight_map", async () => {
        const dir = await copyOf(generated, layout.dir);
        await writeFile(join(dir, layout.index), "{\"weight_map\": {");
        assert.deepEqual(codes((await verifyShardedDir(dir)).report.problems), ["SHARD_INDEX_MALFORMED"]);
        await writeFile(join(dir, layout.index), "{\"metadata\": {}}");
        const { report, model } = await verifyShardedDir(dir);
        assert.deepEqual(codes(report.problems), ["SHARD_INDEX_MALFORMED"]);
        assert.equal(model, undefined);
      });
    });
  }

  it("reports SHARD_CORRUPT (CRC_MISMATCH) when a byte of a .bin shard's tensor data flips", async () => {
    const dir = await copyOf(generated, "hf-bin");
    const shard = join(dir, "pytorch_model-00001-of-00002.bin");
    await flipByte(shard, (await firstTensorByte(shard)) + 3);
    const { report } = await verifyShardedDir(dir);
    assert.deepEqual(codes(report.problems), ["SHARD_CORRUPT"]);
    assert.deepEqual(report.problems[0]?.details, { shard: "pytorch_model-00001-of-00002.bin", code: "CRC_MISMATCH", inner_member: "pytorch_model-00001-of-00002/data/0" });
  });

  it("reports the same problems in the same order whether shards' CRCs run on this thread or on a pool of worker threads", async () => {
    const dir = await copyOf(generated, "hf-bin");
    const first = join(dir, "pytorch_model-00001-of-00002.bin");
    await flipByte(first, (await firstTensorByte(first)) + 3);
    const second = join(dir, "pytorch_model-00002-of-00002.bin");
    await truncateTo(second, 0.5, (await stat(second)).size);
    const single = await verifyShardedDir(dir, { workers: 1 });
    assert.deepEqual(single.report.problems.filter((p) => p.code === "SHARD_CORRUPT").map((p) => [p.details?.shard, p.details?.code]), [
      ["pytorch_model-00001-of-00002.bin", "CRC_MISMATCH"],
      ["pytorch_model-00002-of-00002.bin", "TRUNCATED"],
    ]);
    const pooled = await verifyShardedDir(dir, { workers: 2 });
    assert.deepEqual(pooled.report, single.report);
  });

  it("keeps a shard's UNSAFE_GLOBAL as such: the whole checkpoint is unsafe", async () => {
    const { report } = await verifyShardedDir(join(generated.dir, "hf-bin-unsafe"));
    assert.equal(report.verdict, "unsafe");
    const unsafe = report.problems.find((p) => p.code === "UNSAFE_GLOBAL");
    assert.equal(unsafe?.where.member, "pytorch_model-00002-of-00002.bin");
    assert.match(unsafe?.message ?? "", /posix\.system/);
  });

  it("warns about a file named like a shard that the index does not name", async () => {
    const dir = await copyOf(generated, "hf-safetensors");
    await writeFile(join(dir, "model-00004-of-00004.safetensors"), await readFile(join(dir, "model-00001-of-00003.safetensors")));
    const { report } = await verifyShardedDir(dir);
    assert.equal(report.verdict, "valid");
    assert.deepEqual(report.problems.map((p) => [p.code, p.severity, p.where.member]), [["SHARD_COVERAGE", "warning", "model-00004-of-00004.safetensors"]]);
    const targets = await collectCheckpointTargets([dir]);
    assert.deepEqual(targets, [{ path: dir, kind: "sharded-dir" }]);
  });

  it("verifies both indexes when a directory holds .safetensors and .bin shards side by side", async () => {
    const dir = await copyOf(generated, "hf-safetensors");
    const bin = join(generated.dir, "hf-bin");
    for (const name of ["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]) {
      await writeFile(join(dir, name), await readFile(join(bin, name)));
    }
    await unlink(join(dir, "pytorch_model-00002-of-00002.bin"));
    const layout = await detectShardedDir(dir);
    assert.equal(layout?.kind === "hf-sharded" ? layout.indexPaths.length : 0, 2);
    const { report } = await verifyShardedDir(dir);
    assert.deepEqual(codes(report.problems), ["SHARD_MISSING"]);
  });

  it("an index file given by name stands for its directory", async () => {
    const dir = join(generated.dir, "hf-bin");
    assert.deepEqual(await collectCheckpointTargets([join(dir, "pytorch_model.bin.index.json")]), [{ path: dir, kind: "sharded-dir" }]);
  });
});

describe("shard names from untrusted indexes", () => {
  it("accepts names inside the directory and refuses absolute and climbing ones", () => {
    for (const ok of ["model-00001-of-00002.safetensors", "sub/shard.bin", "a..b.bin"]) assert.equal(shardNameProblem(ok), undefined, ok);
    for (const bad of ["", "../x.bin", "sub/../../x.bin", "/etc/passwd", "C:\\x.bin", "..\\x.bin", "a\0b"]) assert.notEqual(shardNameProblem(bad), undefined, bad);
  });
});
