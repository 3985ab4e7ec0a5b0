/**
 * torch.distributed.checkpoint directories written by torch 1.13 itself (two gloo processes on
 * CPU, ShardedTensors chunked over both ranks), read natively and verified as one checkpoint;
 * then damaged the ways real runs damage them.
 */
import assert from "node:assert/strict";
import { open, readdir, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FileSource } from "../../../src/formats/file-source.js";
import { emptyIntegrity, type PickleObject } from "../../../src/formats/model.js";
import { readZipDirectory, verifyMemberCrcs } from "../../../src/formats/zip.js";
import { readPickle } from "../../../src/formats/pickle/machine.js";
import { dcpMetadataPickleOptions } from "../../../src/formats/sharded/dcp-allowlist.js";
import { detectShardedDir, readDcpMetadata } from "../../../src/formats/sharded/index.js";
import { getPath } from "../../../src/formats/tree.js";
import { verifyShardedDir } from "../../../src/verify/sharded/index.js";
import { collectCheckpointTargets } from "../../../src/verify/collect-paths.js";
import type { Problem } from "../../../src/verify/report.js";
import { expectationRule, parseExpectation } from "../../../src/verify/expectations.js";
import { copyOf, firstTensorByte, flipByte, makeShardedCheckpoints, truncateTo, type ShardedCheckpoints } from "../../helpers/sharded.js";

const codes = (problems: readonly Problem[]) => problems.filter((p) => p.severity === "error").map((p) => p.code);

describe("torch.distributed.checkpoint directories (torch 1.13, 2 gloo ranks)", () => {
  let generated: ShardedCheckpoints;
  const dcp = () => join(generated.dir, "dcp");

  before(async () => {
    generated = await makeShardedCheckpoints(["dcp"]);
  });

  after(async () => {
    if (generated !== undefined) await rm(generated.dir, { recursive: true, force: true });
  });

  it("reads .metadata as data: every key with its size and chunks, every item's shard and byte range", async () => {
    const metadata = await readDcpMetadata(join(dcp(), ".metadata"));
    assert.deepEqual(metadata.unsafeGlobals, []);
    assert.deepEqual(metadata.defects, []);
    const expected = generated.summary.dcp;
    const sizes = Object.fromEntries(metadata.entries.map((e) => [e.fqn, e.kind === "tensor" ? e.size : "bytes"]));
    assert.deepEqual(sizes, expected.entries);
    const chunks = Object.fromEntries(metadata.entries.flatMap((e) => (e.kind === "tensor" ? [[e.fqn, e.chunks.length]] : [])));
    assert.deepEqual(chunks, expected.chunks);
    assert.deepEqual([...new Set(metadata.items.map((i) => i.relativePath))].sort(), expected.files);
    const w = metadata.entries.find((e) => e.fqn === "w");
    assert.ok(w?.kind === "tensor");
    assert.equal(w.dtype, "float32");
    assert.deepEqual(w.chunks, [{ offsets: [0, 0], sizes: [4, 3] }, { offsets: [4, 0], sizes: [4, 3] }]);
    assert.equal(metadata.entries.find((e) => e.fqn === "emb" && e.kind === "tensor" && e.dtype === "float64")?.fqn, "emb");
  });

  it("is detected as one DCP checkpoint made of .metadata and its .distcp files", async () => {
    const layout = await detectShardedDir(dcp());
    assert.equal(layout?.kind, "dcp");
    const names = (await readdir(dcp())).sort();
    assert.deepEqual(layout.files.map((f) => f.slice(dcp().length + 1)).sort(), names);
    assert.equal(await detectShardedDir(generated.dir), undefined);
  });

  for (const name of ["dcp", "dcp-single"]) {
    it(`verifies ${name}/ as valid, with the whole checkpoint's keys, values and size in its model`, async () => {
      const { report, model } = await verifyShardedDir(join(generated.dir, name));
      assert.deepEqual(report.problems, []);
      assert.equal(report.verdict, "valid");
      assert.equal(report.format, "dcp");
      assert.ok(model);
      assert.deepEqual(model.tensors.map((t) => [t.path, t.dtype, t.shape]), [
        ["w", "float32", [8, 3]], ["emb", "float64", [5, 4]], ["proj", "float32", [2, 9]], ["bias", "float32", [4]], ["scale", "float32", []],
      ]);
      assert.equal(getPath(model.root, "step"), 7);
      assert.equal(getPath(model.root, "config.name"), "tiny");
      let total = 0;
      for (const file of await readdir(join(generated.dir, name))) total += (await stat(join(generated.dir, name, file))).size;
      assert.equal(model.fileSize, total);
    });
  }

  it("single_file_per_rank puts several torch.save streams in one file at non-zero offsets", async () => {
    const metadata = await readDcpMetadata(join(generated.dir, "dcp-single", ".metadata"));
    assert.deepEqual([...new Set(metadata.items.map((i) => i.relativePath))].sort(), generated.summary.dcp.single_files);
    assert.ok(metadata.items.some((i) => i.offset > 0));
  });

  it("reads an item at a non-zero offset as a file of its own, CRC-checked on one thread or on workers", async () => {
    const dir = await copyOf(generated, "dcp-single");
    const metadata = await readDcpMetadata(join(dir, ".metadata"));
    const item = metadata.items.find((i) => i.relativePath === "__0_0.distcp" && i.fqn === "emb");
    assert.ok(item && item.offset > 0);
    const path = join(dir, item.relativePath);
    await flipByte(path, item.offset + (await firstTensorByte(path, item.offset, item.length)) + 2);
    const file = await FileSource.open(path, (await stat(path)).size);
    try {
      const window = file.window(item.offset, item.length, "emb");
      const directory = await readZipDirectory(window);
      for (const workers of [1, 2]) {
        const facts = emptyIntegrity();
        await verifyMemberCrcs(window, directory.members, facts, { workers });
        assert.deepEqual(facts.crcMismatches.map((m) => m.member.replace(/^.*\//, "")), ["0"], `${workers} workers`);
      }
    } finally {
      await file.close();
    }
  });

  it("reports the same verdict and problems in the same order whether CRCs run on this thread or on a pool of worker threads", async () => {
    const dir = await copyOf(generated, "dcp-single");
    const metadata = await readDcpMetadata(join(dir, ".metadata"));
    // Two damaged shards: a flipped tensor byte in rank 0's file, rank 1's file cut short.
    const item = metadata.items.find((i) => i.relativePath === "__0_0.distcp" && i.fqn === "emb");
    assert.ok(item);
    const first = join(dir, item.relativePath);
    await flipByte(first, item.offset + (await firstTensorByte(first, item.offset, item.length)) + 2);
    const second = join(dir, "__1_0.distcp");
    await truncateTo(second, 0.6, (await stat(second)).size);
    const single = await verifyShardedDir(dir, { workers: 1 });
    assert.deepEqual(single.report.problems.map((p) => [p.code, p.details?.shard, p.details?.code]), [
      ["SHARD_CORRUPT", "__0_0.distcp", "CRC_MISMATCH"],
      ["SHARD_CORRUPT", "__1_0.distcp", "TRUNCATED"],
    ]);
    for (const workers of [2, 3]) {
      const pooled = await verifyShardedDir(dir, { workers });
      assert.deepEqual(pooled.report, single.report, `${workers} workers`);
      assert.deepEqual(pooled.model?.root, single.model?.root, `${workers} workers`);
    }
    const valid = join(generated.dir, "dcp");
    assert.deepEqual((await verifyShardedDir(valid, { workers: 2 })).report, (await verifyShardedDir(valid, { workers: 1 })).report);
  });

  it("--deep finds a NaN inside an item at a non-zero offset of its shard", async () => {
    const dir = await copyOf(generated, "dcp-single");
    assert.equal((await verifyShardedDir(dir, { deep: true })).report.verdict, "valid");
    const metadata = await readDcpMetadata(join(dir, ".metadata"));
    const item = metadata.items.find((i) => i.relativePath === "__1_0.distcp" && i.fqn === "proj");
    assert.ok(item && item.offset > 0);
    const path = join(dir, item.relativePath);
    const at = item.offset + (await firstTensorByte(path, item.offset, item.length)) + 4; // second float32 element
    const handle = await open(path, "r+");
    await handle.write(Buffer.from([0x00, 0x00, 0xc0, 0x7f]), 0, 4, at); // NaN, little-endian
    await handle.close();
    // CRC first would call it CRC_MISMATCH; without it the deep scan must read the right bytes.
    const { report } = await verifyShardedDir(dir, { deep: true, checkCrc: false });
    assert.deepEqual(report.problems.map((p) => [p.code, p.details?.code, p.where.member]), [["SHARD_CORRUPT", "NON_FINITE", "__1_0.distcp"]]);
  });

  it("runs --expect style rules over the whole checkpoint, not over single shards", async () => {
    const ok = await verifyShardedDir(dcp(), {}, [expectationRule(["step=7", "w.shape=[8,3]"].map((e) => parseExpectation(e)))]);
    assert.equal(ok.report.verdict, "valid", JSON.stringify(ok.report.problems));
    const wrong = await verifyShardedDir(dcp(), {}, [expectationRule([parseExpectation("step=8")])]);
    assert.deepEqual(codes(wrong.report.problems), ["EXPECTATION_FAILED"]);
  });

  it("reports SHARD_MISSING naming the shard and what it held when a .distcp file is deleted", async () => {
    const dir = await copyOf(generated, "dcp");
    await unlink(join(dir, "__1_0.distcp"));
    const { report } = await verifyShardedDir(dir);
    assert.deepEqual(codes(report.problems), ["SHARD_MISSING"]);
    assert.equal(report.verdict, "incomplete");
    assert.equal(report.problems[0]?.where.member, "__1_0.distcp");
    assert.equal(report.problems[0]?.details?.shard, "__1_0.distcp");
  });

  it("reports SHARD_MISSING for .metadata when the save died before writing it", async () => {
    const dir = await copyOf(generated, "dcp");
    await unlink(join(dir, ".metadata"));
    assert.equal((await detectShardedDir(dir))?.kind, "dcp");
    const { report, model } = await verifyShardedDir(dir);
    assert.deepEqual(codes(report.problems), ["SHARD_MISSING"]);
    assert.equal(report.problems[0]?.where.member, ".metadata");
    assert.equal(model, undefined);
  });

  it("reports SHARD_CORRUPT (TRUNCATED) when a shard is cut short", async () => {
    const dir = await copyOf(generated, "dcp-single");
    const shard = join(dir, "__0_0.distcp");
    await truncateTo(shard, 0.5, (await stat(shard)).size);
    const { report } = await verifyShardedDir(dir);
    assert.deepEqual(codes(report.problems), ["SHARD_CORRUPT"]);
    assert.equal(report.verdict, "corrupt");
    assert.deepEqual(report.problems[0]?.details, { shard: "__0_0.distcp", code: "TRUNCATED" });
  });

  it("reports SHARD_CORRUPT (CRC_MISMATCH) when a byte of a tensor chunk flips", async () => {
    const dir = await copyOf(generated, "dcp");
    const metadata = await readDcpMetadata(join(dir, ".metadata"));
    const item = metadata.items.find((i) => i.fqn === "w" && i.chunkOffsets?.[0] === 4);
    assert.ok(item);
    const shard = join(dir, item.relativePath);
    await flipByte(shard, item.offset + (await firstTensorByte(shard)) + 5);
    const { report } = await verifyShardedDir(dir);
    assert.deepEqual(codes(report.problems), ["SHARD_CORRUPT"]);
    assert.equal(report.problems[0]?.details?.code, "CRC_MISMATCH");
    assert.equal(report.problems[0]?.where.member, item.relativePath);
  });

  it("reports UNSAFE_GLOBAL when the .metadata pickle would run code on load", async () => {
    const { report } = await verifyShardedDir(join(generated.dir, "dcp-unsafe"));
    assert.equal(report.verdict, "unsafe");
    const unsafe = report.problems.find((p) => p.code === "UNSAFE_GLOBAL");
    assert.match(unsafe?.message ?? "", /posix\.system/);
    assert.equal(unsafe?.where.member, ".metadata");
    const allowed = await verifyShardedDir(join(generated.dir, "dcp-unsafe"), { allowGlobals: new Set(["posix.system"]) });
    assert.equal(allowed.report.verdict, "valid");
  });

  it("reports SHARD_COVERAGE when chunks overlap or leave rows never saved", async () => {
    const overlap = await verifyShardedDir(join(generated.dir, "dcp-overlap"));
    assert.ok(codes(overlap.report.problems).every((c) => c === "SHARD_COVERAGE"));
    assert.ok(overlap.report.problems.some((p) => /overlap/.test(p.message) && p.where.path === "w"));
    const hole = await verifyShardedDir(join(generated.dir, "dcp-hole"));
    assert.deepEqual(codes(hole.report.problems), ["SHARD_COVERAGE"]);
    assert.match(hole.report.problems[0]?.message ?? "", /24 of the tensor's 30 elements/);
  });

  it("refuses a shard name that climbs out of the directory (SHARD_PATH_ESCAPE, unsafe)", async () => {
    const { report } = await verifyShardedDir(join(generated.dir, "dcp-escape"));
    assert.deepEqual(codes(report.problems), ["SHARD_PATH_ESCAPE"]);
    assert.equal(report.verdict, "unsafe");
    assert.equal(report.problems[0]?.details?.shard, "../outside.distcp");
  });

  it("lists a DCP directory as one target; its .distcp files are not listed again", async () => {
    const targets = await collectCheckpointTargets([generated.dir]);
    const dcpTargets = targets.filter((t) => t.kind === "sharded-dir").map((t) => t.path.slice(generated.dir.length + 1));
    assert.ok(["dcp", "dcp-single", "dcp-unsafe", "dcp-overlap", "dcp-hole", "dcp-escape"].every((name) => dcpTargets.includes(name)));
    assert.deepEqual(targets.filter((t) => t.path.endsWith(".distcp")), []);
    assert.deepEqual(await collectCheckpointTargets([join(dcp(), ".metadata")]), [{ path: dcp(), kind: "sharded-dir" }]);
  });
});

describe("the DCP .metadata allowlist", () => {
  const ENUM = "torch.distributed._shard.sharded_tensor.metadata\nMEM_FORMAT_ENCODING\n";
  /** protocol 2: GLOBAL builtins.getattr, GLOBAL <owner>, SHORT_BINUNICODE <attr>, TUPLE2, REDUCE, [extra], STOP */
  const getattrPickle = (owner: string, attr: string, extra: number[] = []) => Buffer.concat([
    Buffer.from([0x80, 0x02]), Buffer.from(`cbuiltins\ngetattr\nc${owner}`, "latin1"),
    Buffer.from([0x8c, attr.length]), Buffer.from(attr, "latin1"), Buffer.from([0x86, 0x52, ...extra, 0x2e]),
  ]);
  const unsafe = (bytes: Buffer) => readPickle(bytes, 0, dcpMetadataPickleOptions("test")).unsafeGlobals.map((u) => `${u.module}.${u.name} ${u.use}`);

  it("accepts getattr of a memory-format enum member, as Python 3.11 pickles TensorProperties", () => {
    const result = readPickle(getattrPickle(ENUM, "TORCH_CONTIGUOUS_FORMAT"), 0, dcpMetadataPickleOptions("test"));
    assert.deepEqual(result.unsafeGlobals, []);
    assert.deepEqual((result.value as PickleObject).args, ["TORCH_CONTIGUOUS_FORMAT"]);
  });

  it("reports any other getattr as an unsafe call", () => {
    assert.deepEqual(unsafe(getattrPickle(ENUM, "__class__")), ["builtins.getattr call"]);
    assert.deepEqual(unsafe(getattrPickle("posix\nsystem\n", "__call__")), ["posix.system reference", "builtins.getattr call"]);
  });

  it("reports calling what getattr returned", () => {
    // getattr(MEM_FORMAT_ENCODING, "TORCH_CHANNELS_LAST")(): EMPTY_TUPLE, REDUCE
    assert.deepEqual(unsafe(getattrPickle(ENUM, "TORCH_CHANNELS_LAST", [0x29, 0x52])), ["<value>.result of torch.distributed._shard.sharded_tensor.metadata.MEM_FORMAT_ENCODING(...) call"]);
  });

  it("does not accept DCP's dataclasses in ordinary checkpoints", async () => {
    const { genericReducers, REFERENCE_ONLY } = await import("../../../src/formats/pickle/allowlist.js");
    const bytes = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from("ctorch.distributed._shard.checkpoint.metadata\nMetadata\n)\x81.", "latin1")]);
    const names = readPickle(bytes, 0, { stream: "t", reducers: genericReducers(), referenceOnly: REFERENCE_ONLY }).unsafeGlobals.map((u) => u.name);
    assert.deepEqual(names, ["Metadata"]);
  });
});
