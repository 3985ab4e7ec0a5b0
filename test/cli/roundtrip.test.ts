/**
 * Round trip against real PyTorch: checkpoints written by torch 1.13 (zip and legacy layouts,
 * pickle protocols 2 and 4, every common dtype, views sharing storage, nested containers,
 * Adam/AdamW/SGD optimizer state) must read back in ckptguard exactly as torch.load reads them.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { makeRoundtripCheckpoints, runCli, type ProcessResult, type RoundtripCheckpoints } from "../helpers/torch.js";

const SEEDS = [1, 2];

/** File names in expected.json (its other top-level keys start with `_`). */
function checkpointNames(expected: Record<string, unknown>): string[] {
  return Object.keys(expected).filter((name) => !name.startsWith("_")).sort();
}

/** Parses the CLI's stdout as JSON, failing with everything the CLI said when it is not. */
function parseJsonOutput(result: ProcessResult, what: string): any {
  try {
    return JSON.parse(result.stdout);
  } catch {
    assert.fail(`${what}: stdout is not JSON (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

for (const seed of SEEDS) {
  describe(`round trip of torch-written checkpoints, seed ${seed}`, () => {
    let generated: RoundtripCheckpoints | undefined;

    before(async () => {
      generated = await makeRoundtripCheckpoints(seed);
    });

    after(async () => {
      if (generated !== undefined) await rm(generated.dir, { recursive: true, force: true });
    });

    it("inspect --json --tensor-hash gives the keys, dtypes, shapes, hashes and values torch.load gives", async (t) => {
      assert.ok(generated);
      const { dir, expected } = generated;
      for (const name of checkpointNames(expected)) {
        await t.test(name, async () => {
          const truth = expected[name];
          const result = await runCli(["inspect", join(dir, name), "--json", "--tensor-hash"]);
          assert.equal(result.code, 0, `exit ${result.code}, stderr: ${result.stderr}`);
          const report = parseJsonOutput(result, `inspect ${name}`);
          assert.equal(report.format, name.includes("legacy") ? "torch-legacy" : "torch-zip");
          assert.deepEqual(report.top_level_keys, truth.top_level_keys);
          assert.deepEqual(Object.keys(report.entries).sort(), Object.keys(truth.entries).sort(), "entry paths");
          for (const [path, entry] of Object.entries(truth.entries)) {
            assert.deepEqual(report.entries[path], entry, `entry ${path}`);
          }
        });
      }
    });

    it("verify --json finds every file valid and exits 0", async () => {
      assert.ok(generated);
      const { dir, expected } = generated;
      const paths = checkpointNames(expected).map((name) => join(dir, name));
      const result = await runCli(["verify", ...paths, "--json"], { timeoutMs: 120_000 });
      const output = parseJsonOutput(result, "verify");
      const notValid = (output.files as Array<{ path: string; verdict: string; problems: unknown[] }>)
        .filter((report) => report.verdict !== "valid")
        .map((report) => ({ path: report.path, verdict: report.verdict, problems: report.problems }));
      assert.deepEqual(notValid, [], JSON.stringify(notValid, null, 1));
      assert.equal(output.files.length, paths.length);
      const { valid, invalid, unsafe } = output.summary;
      assert.deepEqual({ valid, invalid, unsafe }, { valid: paths.length, invalid: 0, unsafe: 0 });
      assert.equal(result.code, 0, `stderr: ${result.stderr}`);
    });
  });
}
