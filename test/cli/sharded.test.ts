/**
 * `ckptguard verify` on sharded checkpoints as a user runs it: a run directory holding a DCP
 * save, an HF-style sharded save beside a Trainer's optimizer.pt, and a plain file. Each sharded
 * directory is one checkpoint with one verdict; its shards are never reported one by one.
 */
import assert from "node:assert/strict";
import { copyFile, cp, mkdir, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeShardedCheckpoints, type ShardedCheckpoints } from "../helpers/sharded.js";
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
});
