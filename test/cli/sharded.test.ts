/**
 * `ckptguard verify` on sharded checkpoints as a user runs it: a run directory holding a DCP
 * save, an HF-style sharded save beside a Trainer's optimizer.pt, and a plain file. Each sharded
 * directory is one checkpoint with one verdict; its shards are never reported one by one.
 */
import assert from "node:assert/strict";
import { copyFile, cp, mkdir, readdir, rename, rm, stat, truncate, unlink } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { flipByte, makeShardedCheckpoints, type ShardedCheckpoints } from "../helpers/sharded.js";
import { runCli, type ProcessResult } from "../helpers/torch.js";

interface VerifyJson {
  files: Array<{ path: string; format: string; verdict: string; problems: Array<{ code: string; severity: string; where: Record<string, unknown> }> }>;
  summary: { valid: number; invalid: number; unsafe: number };
}

function parse(result: ProcessResult): VerifyJson {
  try {
    return JSON.parse(result.stdout) as VerifyJson;
  } catch {
    assert.fail(`stdout is not JSON (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

describe("ckptguard verify on sharded checkpoint directories", () => {
  let generated: ShardedCheckpoints;
  let run: string;

  before(async () => {
    generated = await makeShardedCheckpoints(["dcp", "hf"]);
    // runs/: a DCP save, an HF Trainer-style checkpoint-500/ with sharded weights and its optimizer, a plain file.
    run = join(generated.dir, "runs");
    await mkdir(run);
    await cp(join(generated.dir, "dcp"), join(run, "step-100"), { recursive: true });
    await cp(join(generated.dir, "hf-safetensors"), join(run, "checkpoint-500"), { recursive: true });
    await copyFile(join(generated.dir, "hf-bin", "pytorch_model-00001-of-00002.bin"), join(run, "checkpoint-500", "optimizer.pt"));
    await copyFile(join(generated.dir, "hf-bin", "pytorch_model-00002-of-00002.bin"), join(run, "final.pt"));
  });

  after(async () => {
    if (generated !== undefined) await rm(generated.dir, { recursive: true, force: true });
  });

  it("reports each sharded directory once, its other files on their own, and exits 0", async () => {
    const result = await runCli(["verify", run, "--json"]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const json = parse(result);
    assert.deepEqual(json.files.map((f) => [f.path.slice(run.length + 1), f.format, f.verdict]), [
      ["checkpoint-500", "hf-sharded", "valid"],
      ["checkpoint-500/optimizer.pt", "torch-zip", "valid"],
      ["final.pt", "torch-zip", "valid"],
      ["step-100", "dcp", "valid"],
    ]);
  });

  it("exits 1 with SHARD_MISSING when a DCP shard is deleted, naming it in the human output", async () => {
    const dir = join(generated.dir, "dcp-missing");
    await cp(join(generated.dir, "dcp"), dir, { recursive: true });
    await unlink(join(dir, "__0_1.distcp"));
    const result = await runCli(["verify", dir]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /incomplete\s+.*dcp-missing\s+\(dcp\)/);
    assert.match(result.stdout, /SHARD_MISSING: shard __0_1\.distcp is missing/);
  });

  it("exits 3 when the DCP metadata pickle carries an unsafe global", async () => {
    const result = await runCli(["verify", join(generated.dir, "dcp-unsafe"), "--json"]);
    assert.equal(result.code, 3);
    assert.deepEqual(parse(result).files.map((f) => f.verdict), ["unsafe"]);
  });

  it("exits 3 when a .bin shard would run code, even among valid checkpoints", async () => {
    const result = await runCli(["verify", join(generated.dir, "hf-bin"), join(generated.dir, "hf-bin-unsafe"), "--json"]);
    assert.equal(result.code, 3);
    const { valid, invalid, unsafe } = parse(result).summary;
    assert.deepEqual({ valid, invalid, unsafe }, { valid: 1, invalid: 0, unsafe: 1 });
  });

  it("takes an index file as its directory, and applies --require to the whole sharded checkpoint", async () => {
    const index = join(generated.dir, "hf-bin", "pytorch_model.bin.index.json");
    const ok = await runCli(["verify", index, "--require", "lm_head.weight", "--require", "model.layers.0.weight", "--json"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.deepEqual(parse(ok).files.map((f) => [f.path, f.format]), [[join(generated.dir, "hf-bin"), "hf-sharded"]]);
    const missing = await runCli(["verify", index, "--require", "optimizer", "--json"]);
    assert.equal(missing.code, 1);
    assert.deepEqual(parse(missing).files[0]?.problems.map((p) => p.code), ["MISSING_KEY"]);
  });

  it("takes one .distcp shard as its directory, so damage past the shard's first stream is found", async () => {
    const dir = join(generated.dir, "dcp-one-shard");
    await cp(join(generated.dir, "dcp"), dir, { recursive: true });
    const shard = join(dir, "__1_0.distcp");
    const whole = await runCli(["verify", shard, "--json"]);
    assert.equal(whole.code, 0, whole.stdout + whole.stderr);
    assert.deepEqual(parse(whole).files.map((f) => [f.path, f.format, f.verdict]), [[dir, "dcp", "valid"]]);
    // The shard's last bytes belong to its last torch.save stream, never to the first.
    const { size } = await stat(shard);
    await flipByte(shard, size - 30);
    const damaged = await runCli(["verify", shard, "--json"]);
    assert.equal(damaged.code, 1, damaged.stdout);
    const [report] = parse(damaged).files;
    assert.deepEqual([report?.path, report?.verdict], [dir, "corrupt"]);
    assert.ok(report?.problems.some((p) => p.code === "SHARD_CORRUPT"), JSON.stringify(report?.problems));
  });

  describe("ls and latest", () => {
    let lsRun: string;

    before(async () => {
      // A run that saves one sharded checkpoint per step: HF weights (not resumable: no optimizer),
      // two DCP training saves, one with rank 1's shard cut short, and one whose .metadata is still
      // .metadata.tmp (torch renames it last).
      lsRun = join(generated.dir, "ls-run");
      await mkdir(lsRun);
      await cp(join(generated.dir, "hf-safetensors"), join(lsRun, "step-050-hf"), { recursive: true });
      for (const step of ["step-100", "step-200", "step-300", "step-400"]) await cp(join(generated.dir, "dcp-train"), join(lsRun, step), { recursive: true });
      const cut = join(lsRun, "step-300", "__1_0.distcp");
      await truncate(cut, Math.floor((await stat(cut)).size / 2));
      await rename(join(lsRun, "step-400", ".metadata"), join(lsRun, "step-400", ".metadata.tmp"));
    });

    it("ls --json lists each sharded directory as one entry with its verdict, never its shard files", async () => {
      const result = await runCli(["ls", lsRun, "--json"]);
      assert.equal(result.code, 1, "a corrupt checkpoint fails the listing");
      const listing = JSON.parse(result.stdout);
      const rows = listing.entries.map((e: any) => [e.path.slice(lsRun.length + 1), e.kind, e.verdict, e.in_progress]);
      assert.deepEqual(rows, [
        ["step-050-hf", "sharded-dir", "incomplete", false],
        ["step-100", "sharded-dir", "valid", false],
        ["step-200", "sharded-dir", "valid", false],
        ["step-300", "sharded-dir", "corrupt", false],
        ["step-400", "sharded-dir", "incomplete", true],
      ]);
      assert.equal(listing.latest, join(lsRun, "step-200"));
      const corrupt = listing.entries[3];
      assert.deepEqual(corrupt.problems.map((p: any) => [p.code, p.details?.shard, p.details?.code]), [["SHARD_CORRUPT", "__1_0.distcp", "TRUNCATED"]]);
      assert.deepEqual(listing.entries[0].problems.map((p: any) => [p.code, p.details?.part]), [["MISSING_KEY", "optimizer"], ["MISSING_KEY", "step"]]);
      assert.equal(listing.entries[1].step, 7, "the step DCP saved as a non-tensor value");
      assert.equal(listing.entries[1].size, (await Promise.all((await readdir(join(lsRun, "step-100"))).map(async (n) => (await stat(join(lsRun, "step-100", n))).size))).reduce((a, b) => a + b, 0));
    });

    it("latest skips the corrupt and the unfinished save and prints the newest whole one", async () => {
      const result = await runCli(["latest", lsRun]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${join(lsRun, "step-200")}\n`);
      assert.match(result.stderr, /skipped step-300: corrupt \(SHARD_CORRUPT/);
      assert.match(result.stderr, /skipped step-400: in progress/);
    });

    it("ls --verify CRC-checks every shard and finds a flipped tensor byte that the structure check cannot see", async () => {
      const dir = join(lsRun, "..", "ls-flip");
      await mkdir(dir);
      await cp(join(generated.dir, "dcp-train"), join(dir, "step-1"), { recursive: true });
      const { firstTensorByte, flipByte } = await import("../helpers/sharded.js");
      const { readDcpMetadata } = await import("../../src/formats/sharded/index.js");
      const item = (await readDcpMetadata(join(dir, "step-1", ".metadata"))).items.find((i) => i.fqn === "w" && i.relativePath.startsWith("__1_"));
      assert.ok(item);
      const shard = join(dir, "step-1", item.relativePath);
      await flipByte(shard, item.offset + (await firstTensorByte(shard, item.offset, item.length)));
      const structure = JSON.parse((await runCli(["ls", dir, "--json"])).stdout);
      assert.deepEqual(structure.entries.map((e: any) => e.verdict), ["valid"]);
      const full = await runCli(["ls", dir, "--json", "--verify"]);
      assert.equal(full.code, 1);
      assert.deepEqual(JSON.parse(full.stdout).entries[0].problems.map((p: any) => [p.code, p.details?.code]), [["SHARD_CORRUPT", "CRC_MISMATCH"]]);
    });
  });

  describe("inspect", () => {
    it("shows a DCP directory as one checkpoint: each tensor at its global shape, the nested state dicts, the layout", async () => {
      const result = await runCli(["inspect", join(generated.dir, "dcp-train"), "--json"]);
      assert.equal(result.code, 0, result.stderr);
      const shown = JSON.parse(result.stdout);
      assert.equal(shown.format, "dcp");
      assert.deepEqual(shown.top_level_keys.sort(), ["model", "optimizer", "step", "w"]);
      assert.deepEqual(shown.entries.w, { dtype: "float32", shape: [8, 3] }, "w is chunked over both ranks; inspect shows the whole tensor");
      assert.deepEqual(shown.entries["model.weight"], { dtype: "float32", shape: [3, 4] });
      assert.deepEqual(shown.entries.step, { value: 7 });
      assert.equal(shown.layout.name, "training");
      assert.equal(shown.layout.step, 7);
    });

    it("shows an HF sharded directory (or its index) as every tensor of every shard", async () => {
      const result = await runCli(["inspect", join(generated.dir, "hf-bin", "pytorch_model.bin.index.json"), "--json"]);
      assert.equal(result.code, 0, result.stderr);
      const shown = JSON.parse(result.stdout);
      assert.equal(shown.format, "hf-sharded");
      assert.deepEqual(Object.keys(shown.entries).sort(), Object.keys(generated.summary.hf.bin_weight_map).sort());
    });

    it("shows the whole DCP checkpoint for one of its .distcp shards, as verify reads it", async () => {
      const shard = (await readdir(join(generated.dir, "dcp-train"))).find((name) => name.endsWith(".distcp"))!;
      const result = await runCli(["inspect", join(generated.dir, "dcp-train", shard), "--json"]);
      assert.equal(result.code, 0, result.stderr);
      const shown = JSON.parse(result.stdout);
      assert.equal(shown.format, "dcp");
      assert.deepEqual(shown.entries.w, { dtype: "float32", shape: [8, 3] }, "every shard's chunks, not the first stream of one file");
    });

    it("refuses --tensor-hash on a sharded directory with exit 2", async () => {
      const result = await runCli(["inspect", join(generated.dir, "dcp-train"), "--tensor-hash"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /USAGE: --tensor-hash/);
    });
  });
});
