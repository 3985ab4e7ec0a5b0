/**
 * The ls, latest, check-run and diff commands as a user runs them: real processes, real
 * torch checkpoints, DESIGN.md's output and exit-code contracts.
 */
import assert from "node:assert/strict";
import { readFile, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { makeRunDirs, type RunDirs } from "../helpers/runs.js";
import { REPO_ROOT, runCli, runPython, type ProcessResult } from "../helpers/torch.js";

function json(result: ProcessResult): any {
  try {
    return JSON.parse(result.stdout);
  } catch {
    assert.fail(`stdout is not JSON (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

describe("catalog commands", () => {
  let runs: RunDirs | undefined;
  const run = (name: string) => join(runs!.dir, name);

  before(async () => {
    runs = await makeRunDirs("cli");
  });
  after(async () => {
    if (runs) await rm(runs.dir, { recursive: true, force: true });
  });

  describe("latest", () => {
    it("prints exactly one path on stdout, the one before the truncated newest, and says on stderr what it skipped", async () => {
      const result = await runCli(["latest", run("main")]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, `${join(run("main"), runs!.expected.main.latest)}\n`);
      assert.match(result.stderr, /skipped ckpt_epoch_0005\.pt: corrupt \(TRUNCATED/);
      assert.match(result.stderr, /skipped \.ckpt_epoch_0006\.pt\.x1y2\.tmp: in progress/);
    });

    it("--best --metric val_loss --mode min prints the best by the metric", async () => {
      const result = await runCli(["latest", run("main"), "--best", "--metric", "val_loss", "--mode", "min", "--quiet"]);
      assert.deepEqual([result.code, result.stdout, result.stderr], [0, `${join(run("main"), runs!.expected.main.best_val_loss)}\n`, ""]);
    });

    it("--best reads the metric from a metrics file when the checkpoints do not record it", async () => {
      const metrics = join(run("sgd"), "metrics.jsonl");
      await import("node:fs/promises").then((fs) => fs.writeFile(metrics, '{"epoch": 1, "val_acc": 0.5}\n{"epoch": 2, "val_acc": 0.8}\n{"epoch": 3, "val_acc": 0.7}\n'));
      try {
        const result = await runCli(["latest", run("sgd"), "--best", "--metric", "val_acc", "--quiet"]);
        assert.deepEqual([result.code, result.stdout], [0, `${join(run("sgd"), "ckpt_epoch_0002.pt")}\n`], result.stderr);
      } finally {
        await rm(metrics);
      }
    });

    it("exits 1 with one clear line and an empty stdout when no checkpoint qualifies", async () => {
      const result = await runCli(["latest", run("main"), "--expect", "config.epochs=11", "--quiet"]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^ckptguard: .*main: NO_VALID_CHECKPOINT: none of the 7 checkpoints .* is valid, complete and finished writing\n$/);
    });

    it("--json prints the chosen checkpoint with its epoch and verdict, and what was skipped and why", async () => {
      const result = await runCli(["latest", run("main"), "--json", "--quiet"]);
      assert.equal(result.code, 0, result.stderr);
      const answer = JSON.parse(result.stdout);
      assert.equal(answer.path, join(run("main"), runs!.expected.main.latest));
      assert.deepEqual([answer.chosen.path, answer.chosen.verdict, answer.chosen.check], [answer.path, "valid", "full"]);
      assert.equal(answer.reason, null);
      const truncated = answer.skipped.find((e: any) => e.path.endsWith("ckpt_epoch_0005.pt"));
      assert.equal(truncated.verdict, "corrupt");
      assert.ok(truncated.problems.some((p: any) => p.code === "TRUNCATED"));
    });

    it("--json with no qualifying checkpoint prints path null and the reason, and still exits 1", async () => {
      const result = await runCli(["latest", run("main"), "--json", "--quiet", "--expect", "config.epochs=11"]);
      assert.equal(result.code, 1);
      const answer = JSON.parse(result.stdout);
      assert.deepEqual([answer.path, answer.chosen], [null, null]);
      assert.match(answer.reason, /none of the 7 checkpoints/);
      assert.match(result.stderr, /NO_VALID_CHECKPOINT/);
      const missing = await runCli(["latest", join(runs!.dir, "no-such-run"), "--json"]);
      assert.equal(missing.code, 1);
      assert.deepEqual(JSON.parse(missing.stdout).path, null, "a directory that does not exist answers with JSON too");
      assert.match(missing.stderr, /NOT_FOUND/);
    });

    it("exits 2 naming the option for a bad --mode, --kind or --settle-ms", async () => {
      for (const args of [["--mode", "lowest"], ["--kind", "weights"], ["--settle-ms", "-5"]]) {
        const result = await runCli(["latest", run("main"), ...args]);
        assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
        assert.match(result.stderr, new RegExp(args[0]!));
        assert.equal(result.stdout, "");
      }
    });

    it("is what a training script's resume logic calls: train_tiny.py resumes from the checkpoint before a truncated one", async () => {
      const out = join(runs!.dir, "tiny");
      const train = (args: string[]) => runPython(join(REPO_ROOT, "examples/train_tiny.py"), ["--out", out, ...args]);
      assert.equal((await train(["--epochs", "3"])).code, 0);
      await truncate(join(out, "ckpt_epoch_0003.pt"), 1000); // the save of epoch 3 died half-way
      const latest = await runCli(["latest", out, "--quiet"]);
      assert.equal(latest.stdout, `${join(out, "ckpt_epoch_0002.pt")}\n`);
      const resumed = await train(["--epochs", "4", "--resume", latest.stdout.trim()]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stdout, /resumed from .*ckpt_epoch_0002\.pt at epoch 2/);
      const after = await runCli(["latest", out, "--quiet"]);
      assert.equal(after.stdout, `${join(out, "ckpt_epoch_0004.pt")}\n`);
    });
  });

  describe("ls", () => {
    it("--json lists every checkpoint oldest first with verdict, step, loss, latest and best, from a structure-only check", async () => {
      const result = await runCli(["ls", run("main"), "--json"]);
      assert.equal(result.code, 1, "a corrupt checkpoint fails the listing");
      const listing = json(result);
      assert.equal(listing.check, "structure");
      assert.equal(listing.latest, join(run("main"), runs!.expected.main.latest));
      assert.equal(listing.best, join(run("main"), runs!.expected.main.best_val_loss));
      assert.deepEqual(listing.metric, { name: "val_loss", mode: "min" });
      const rows = listing.entries.map((e: any) => [e.path.slice(run("main").length + 1), e.verdict, e.epoch, e.in_progress, e.latest, e.best]);
      assert.deepEqual(rows, [
        ["ckpt_epoch_0001.pt", "valid", 1, false, false, false],
        ["ckpt_epoch_0002.pt", "valid", 2, false, false, false],
        ["best.pt", "valid", 2, false, false, false],
        ["ckpt_epoch_0003.pt", "valid", 3, false, false, true],
        ["ckpt_epoch_0004.pt", "valid", 4, false, true, false],
        ["ckpt_epoch_0005.pt", "corrupt", null, false, false, false],
        [".ckpt_epoch_0006.pt.x1y2.tmp", "incomplete", null, true, false, false],
      ]);
      assert.equal(typeof listing.entries[0].size, "number");
      assert.equal(typeof listing.entries[0].loss, "number");
    });

    it("orders HF checkpoint-N/ directories by global_step (not by name) and says it did not CRC", async () => {
      const result = await runCli(["ls", run("hf")]);
      assert.equal(result.code, 0, result.stderr);
      const table = result.stdout.split("\n\n")[0]!;
      const order = [...table.matchAll(/ (checkpoint-\d+)/g)].map((m) => m[1]);
      assert.deepEqual(order, runs!.expected.hf.order);
      assert.match(result.stdout, /structure checked, no CRC pass/);
      assert.match(result.stdout, /latest valid: checkpoint-100/);
    });

    it("--verify checks every byte and finds the NaN checkpoint", async () => {
      const listing = json(await runCli(["ls", run("nan"), "--json", "--verify"]));
      assert.equal(listing.check, "full");
      assert.deepEqual(listing.entries.map((e: any) => e.verdict), ["valid", "valid", "corrupt"]);
      assert.equal(listing.latest, join(run("nan"), runs!.expected.nan.latest));
    });

    it("exits 1 with NOT_A_DIRECTORY for a file", async () => {
      const result = await runCli(["ls", join(run("main"), "best.pt")]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /NOT_A_DIRECTORY/);
    });
  });

  describe("check-run", () => {
    it("--json: BEST_NOT_BEST, the failed file, progress; failed_checkpoints.txt written; exit 1", async () => {
      const result = await runCli(["check-run", run("main"), "--json"]);
      assert.equal(result.code, 1);
      const report = json(result);
      assert.deepEqual(report.problems.map((p: any) => p.code), ["BEST_NOT_BEST"]);
      assert.deepEqual(report.failed.map((f: any) => f.path), [runs!.expected.main.truncated]);
      assert.deepEqual(report.progress, { done: 4, total: 10, unit: "epochs", resume_from: join(run("main"), runs!.expected.main.latest) });
      assert.equal(report.failed_list, join(run("main"), "failed_checkpoints.txt"));
      assert.match(await readFile(report.failed_list, "utf8"), /^ckpt_epoch_0005\.pt\tcorrupt\tTRUNCATED: /);
    });

    it("prints Progress: X/Y epochs complete, resuming from: <file> for a healthy run and exits 0", async () => {
      const result = await runCli(["check-run", run("sgd")]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, new RegExp(`Progress: 3/6 epochs complete, resuming from: ${join(run("sgd"), "ckpt_epoch_0003.pt").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\n`));
    });

    it("--total overrides the configured length", async () => {
      const result = await runCli(["check-run", run("sgd"), "--total", "12", "--no-write-failed"]);
      assert.match(result.stdout, /Progress: 3\/12 epochs complete/);
    });
  });

  describe("diff", () => {
    it("exits 0 for identical checkpoints", async () => {
      const result = await runCli(["diff", join(run("diff"), "a.pt"), join(run("diff"), "a_copy.pt")]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /identical/);
    });

    it("--json exits 1 for checkpoints one step apart: epoch 1 -> 2 and weights changed", async () => {
      const result = await runCli(["diff", join(run("diff"), "a.pt"), join(run("diff"), "b.pt"), "--json"]);
      assert.equal(result.code, 1);
      const diff = json(result);
      assert.equal(diff.identical, false);
      assert.deepEqual(diff.changed.find((c: any) => c.path === "epoch"), { path: "epoch", kind: "value", from: 1, to: 2 });
      const weight = diff.changed.find((c: any) => c.path === "model_state_dict.0.weight");
      assert.equal(weight.kind, "values");
      assert.ok(weight.max_abs_diff > 0 && weight.rel_l2 > 0);
    });

    it("prints scalar changes as from -> to", async () => {
      const result = await runCli(["diff", join(run("diff"), "a.pt"), join(run("diff"), "b.pt")]);
      assert.match(result.stdout, /~ epoch: 1 -> 2\n/);
      assert.match(result.stdout, /~ model_state_dict\.0\.weight: values changed \(max \|diff\| [0-9.e-]+, relative L2 [0-9.e-]+\)/);
    });
  });
});
