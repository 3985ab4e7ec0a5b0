/**
 * The promise of `ckptguard run`, end to end with real torch: a training run killed with
 * `kill -9` at random points three times still finishes, and its final weights and
 * optimizer state are bitwise equal to those of an uninterrupted run with the same seed.
 */
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32, randomInt } from "../helpers/prng.js";
import { killGroupQuietly, readJsonIfPresent, scratchDir, startCli, stopAll, waitFor } from "../helpers/supervised.js";
import { REPO_ROOT, runCli, runPython, TORCH_PYTHON } from "../helpers/torch.js";

const TRAIN = join(REPO_ROOT, "examples/train_tiny.py");
const EPOCHS = 10;
/** Seconds each supervised epoch idles, so that kills land inside epochs (the training itself takes ~20 ms). */
const EPOCH_SLEEP = 0.25;
const SEED = Number(process.env.CKPTGUARD_TEST_SEED ?? 20_250_101);

const scratch: string[] = [];
after(async () => {
  await stopAll();
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

/** The last epoch the current child reported through CKPTGUARD_PROGRESS. */
async function reportedEpoch(progressFeed: string): Promise<number> {
  const lines = (await readFile(progressFeed, "utf8").catch(() => "")).trim().split("\n").filter(Boolean);
  const last = lines[lines.length - 1];
  return last === undefined ? 0 : (JSON.parse(last) as { epoch: number }).epoch;
}

/** Tensor hashes and scalar values of a checkpoint, from `ckptguard inspect --json --tensor-hash`. */
async function contentOf(path: string): Promise<Record<string, unknown>> {
  const result = await runCli(["inspect", path, "--json", "--tensor-hash"]);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { entries: Record<string, unknown> }).entries;
}

describe("ckptguard run with real torch", () => {
  it(`finishes a run kill -9'd at 3 random points bitwise equal to an uninterrupted one (seed ${SEED})`, async () => {
    const random = mulberry32(SEED);
    const reference = await scratchDir("torch-reference");
    const supervised = await scratchDir("torch-supervised");
    scratch.push(reference, supervised);
    const uninterrupted = runPython(TRAIN, ["--out", reference, "--epochs", String(EPOCHS)]);
    const run = startCli([
      "run", "--dir", supervised, "--settle", "50ms", "--poll", "250ms", "--backoff", "50ms", "--max-restarts", "5", "--final-check",
      "--", TORCH_PYTHON, TRAIN, "--out", supervised, "--epochs", String(EPOCHS), "--sleep", String(EPOCH_SLEEP), "--resume", "{resume}",
    ]);
    const progressFile = join(supervised, ".ckptguard", "progress.json");
    const feed = join(supervised, ".ckptguard", "progress.jsonl");
    const killed: number[] = [];
    let target = 0;
    try {
      for (let kill = 0; kill < 3; kill++) {
        // Each kill is a random time into a random epoch 2-3 epochs past the last target,
        // so it may land in the forward pass, the idle time, or in the middle of torch.save.
        target += randomInt(random, 2, 4);
        const pid = await waitFor(`a live child past epoch ${target}`, async () => {
          const progress = await readJsonIfPresent(progressFile);
          const child = progress?.child_pid as number | null | undefined;
          return child && !killed.includes(child) && (await reportedEpoch(feed)) >= target ? child : undefined;
        }, 60_000);
        await sleep(randomInt(random, 0, Math.round(EPOCH_SLEEP * 1000 + 50)));
        process.kill(pid, "SIGKILL");
        killed.push(pid);
      }
      const result = await run.exited;
      assert.equal(result.code, 0, run.output());
      assert.equal((result.stderr.match(/command killed by SIGKILL/g) ?? []).length, 3);
      assert.equal((result.stderr.match(/Progress: \d+\/10 epochs complete, resuming from: /g) ?? []).length, 3);
      assert.match(result.stderr, /final check passed: ckpt_epoch_0010\.pt/);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      for (const pid of killed) killGroupQuietly(pid);
    }
    assert.equal((await uninterrupted).code, 0);

    const expected = await contentOf(join(reference, "ckpt_epoch_0010.pt"));
    const actual = await contentOf(join(supervised, "ckpt_epoch_0010.pt"));
    const keys = Object.keys(expected);
    assert.ok(keys.some((k) => k.startsWith("optimizer_state_dict.state.0.exp_avg")), "Adam state is compared");
    assert.ok(keys.filter((k) => k.startsWith("model_state_dict.")).length >= 6, "every weight is compared");
    assert.deepEqual(actual, expected);
  });
});
