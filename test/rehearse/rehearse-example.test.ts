/**
 * `ckptguard rehearse` on examples/train_tiny.py (real torch, real SIGKILL): every line
 * passes, the table, --json and rehearsal.md agree; plus the pure pieces (argv
 * substitution, diagnosis, exit codes, report escaping) without processes.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import type { DiffResult } from "../../src/catalog/diff.js";
import { launchArgv } from "../../src/rehearse/attempt.js";
import { checklistExitCode, CHECKS, fail, pass, skip } from "../../src/rehearse/checklist.js";
import { diagnose } from "../../src/rehearse/compare.js";
import { rehearse } from "../../src/rehearse/rehearse.js";
import { renderMarkdown } from "../../src/rehearse/report.js";
import { scratchDir } from "../helpers/supervised.js";
import { REPO_ROOT, runCli, TORCH_PYTHON } from "../helpers/torch.js";

const scratch: string[] = [];
after(async () => {
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

describe("rehearse on examples/train_tiny.py", () => {
  it("passes every line, exits 0, and writes the same lines to --json and rehearsal.md", async () => {
    const dir = await scratchDir("rehearse-example");
    scratch.push(dir);
    const result = await runCli([
      "rehearse", "--dir", dir, "--epochs", "3", "--expect", "config.hidden=64", "--max-gap", "60s", "--json", "--",
      TORCH_PYTHON, join(REPO_ROOT, "examples/train_tiny.py"), "--out", "{dir}", "--epochs", "3", "--sleep", "0.4", "--resume", "{resume}",
    ], { timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const json = JSON.parse(result.stdout) as { lines: Array<{ id: string; status: string; reason: string }>; exitCode: number; report: string };
    assert.deepEqual(json.lines.map((l) => l.id), Object.keys(CHECKS));
    const byId = new Map(json.lines.map((l) => [l.id, l]));
    for (const id of ["preflight", "reference-run", "save-interval", "checkpoints-valid", "progress", "kill-leaves-valid", "resume-position", "final-match", "final-newest"]) {
      assert.equal(byId.get(id)?.status, "PASS", `${id}: ${byId.get(id)?.reason}`);
    }
    assert.equal(byId.get("best")?.status, "SKIP", "train_tiny.py saves no best.pt");
    assert.match(byId.get("final-match")!.reason, /bitwise identical/);
    assert.match(byId.get("resume-position")!.reason, /resumed from ckpt_epoch_\d{4}\.pt/);
    assert.equal(json.report, join(dir, "rehearsal.md"));
    const markdown = await readFile(json.report, "utf8");
    assert.match(markdown, /ready to launch/);
    assert.equal(markdown.split("\n").filter((l) => l.startsWith("| ✅ PASS")).length, 9);
  });

  it("exits 2 naming the option for a bad --tolerance, before running anything", async () => {
    const result = await runCli(["rehearse", "--dir", "/nonexistent/x", "--tolerance", "-1", "--", "true"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--tolerance/);
  });

  it("fails the preflight line (and skips the rest) when the command does not exist", async () => {
    const dir = await scratchDir("rehearse-nocommand");
    scratch.push(dir);
    const result = await runCli(["rehearse", "--dir", dir, "--", "/no/such/trainer", "--out", "{dir}"]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^FAIL\s+preflight\s+COMMAND_NOT_FOUND/m);
    assert.match(result.stdout, /^SKIP\s+final-match/m);
  });
});

describe("rehearse stopped by a signal", () => {
  it("kills the running command's process group and rejects with RUN_STOPPED on SIGINT", async () => {
    const dir = await scratchDir("rehearse-stopped");
    scratch.push(dir);
    const signals = new EventEmitter();
    const started = Date.now();
    setTimeout(() => signals.emit("SIGINT"), 1_000);
    await assert.rejects(
      rehearse({ dir, command: [TORCH_PYTHON, join(REPO_ROOT, "examples/train_tiny.py"), "--out", "{dir}", "--epochs", "50", "--sleep", "0.5"] }, { signals }),
      (error: Error & { code?: string }) => error.code === "RUN_STOPPED",
    );
    assert.ok(Date.now() - started < 15_000, "did not wait for the 25 s run");
    assert.deepEqual(await commandsMentioning(dir), [], "no training process is left running");
  });
});

/** Pids whose command line mentions `text`. */
async function commandsMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) pids.push(Number(name));
  }
  return pids;
}

describe("rehearse pieces", () => {
  it("replaces {dir} everywhere and drops `--resume {resume}` on a fresh start", () => {
    assert.deepEqual(launchArgv(["{dir}/train.sh", "--out={dir}", "--resume", "{resume}"], "/s/a", undefined), ["/s/a/train.sh", "--out=/s/a"]);
    assert.deepEqual(launchArgv(["py", "--out", "{dir}", "--resume", "{resume}"], "/s/a", "/s/a/c.pt"), ["py", "--out", "/s/a", "--resume", "/s/a/c.pt"]);
  });

  const diffOf = (changed: DiffResult["changed"]): DiffResult => ({ a: "a", b: "b", identical: false, added: [], removed: [], changed, unsafe_globals: [] });

  it("diagnoses a restarted epoch counter, a reset optimizer and repeated training", () => {
    assert.match(diagnose(diffOf([{ path: "epoch", kind: "value", from: 4, to: 2 }])), /^epoch counter restarted/);
    const step = { path: "optimizer_state_dict.state.0.step", kind: "values" as const, from: "h1", to: "h2", max_abs_diff: 8 };
    const weight = { path: "model_state_dict.0.weight", kind: "values" as const, from: "h3", to: "h4", max_abs_diff: 0.1 };
    assert.match(diagnose(diffOf([weight, step]), { path: step.path, reference: 12, resumed: 4 }), /^optimizer state was not restored/);
    assert.match(diagnose(diffOf([weight, step]), { path: step.path, reference: 12, resumed: 20 }), /more optimizer steps.*counter restarted/);
    const expAvg = { path: "optimizer_state_dict.state.0.exp_avg", kind: "values" as const, from: "h5", to: "h6", max_abs_diff: 0.01 };
    assert.match(diagnose(diffOf([expAvg])), /^optimizer state was not restored: only optimizer state differs \(optimizer_state_dict\.state\.0\.exp_avg\)/);
    assert.match(diagnose(diffOf([weight])), /^model_state_dict\.0\.weight differ/);
  });

  it("exits 0 with SKIP lines, 1 with a FAIL, 3 when unsafe", () => {
    assert.equal(checklistExitCode([pass("preflight", "ok"), skip("best", "none")], false), 0);
    assert.equal(checklistExitCode([pass("preflight", "ok"), fail("progress", "no")], false), 1);
    assert.equal(checklistExitCode([fail("progress", "no")], true), 3);
  });

  it("escapes table pipes in rehearsal.md", () => {
    const md = renderMarkdown({ command: ["a", "|b"], lines: [fail("progress", "x | y")], exitCode: 1 });
    assert.match(md, /not ready/);
    assert.match(md, /\| ❌ FAIL \| .* \| x \\\| y \|/);
  });
});
