/**
 * The Python companion (`python/ckptguard`) against real torch and the real CLI: its own
 * unittest suite (python/tests) run by the torch interpreter with the built `ckptguard` on
 * PATH, and the contract with `ckptguard run`: what Progress writes is what run reads.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";

import { parseProgressLine } from "../../src/run/progress-feed.js";
import { getJson } from "../helpers/serve.js";
import { readJsonIfPresent, startCli, stopAll, waitFor } from "../helpers/supervised.js";
import { CLI, REPO_ROOT, runCli, TEST_TMP, TORCH_PYTHON, type ProcessResult } from "../helpers/torch.js";

const PYTHON_DIR = join(REPO_ROOT, "python");
/** A race the suite reports as a skip (a save that finished before Ctrl-C arrived); nothing else may skip. */
const MAY_SKIP = new Set(["test_ctrl_c_while_torch_writes_never_aborts_the_process"]);

/** Runs `TORCH_PYTHON ...args` with the companion importable and `ckptguard` (the build) on PATH. */
function runCompanionPython(args: string[], binDir: string, timeoutMs: number, cwd = REPO_ROOT): Promise<ProcessResult> {
  const env = {
    ...process.env,
    PATH: `${binDir}${delimiter}${process.env.PATH ?? ""}`,
    PYTHONPATH: PYTHON_DIR,
    PYTHONDONTWRITEBYTECODE: "1", // no __pycache__ inside the shipped python/ folder
  };
  return new Promise((resolvePromise) => {
    execFile(TORCH_PYTHON, args, { cwd, env, encoding: "utf8", maxBuffer: 64 << 20, timeout: timeoutMs, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null; killed?: boolean }) | null;
        resolvePromise({
          stdout, stderr,
          code: failure === null ? 0 : typeof failure.code === "number" ? failure.code : null,
          signal: failure?.signal ?? null,
          timedOut: failure?.killed === true,
        });
      });
  });
}

describe("the Python companion", () => {
  let scratch = "";
  let binDir = "";

  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    scratch = await mkdtemp(join(TEST_TMP, "companion-"));
    binDir = join(scratch, "bin");
    await mkdir(binDir);
    // What `npm install -g` would put on PATH: a `ckptguard` that runs this build.
    const shim = join(binDir, "ckptguard");
    await writeFile(shim, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
    await chmod(shim, 0o755);
  });

  after(async () => {
    await stopAll();
    await rm(scratch, { recursive: true, force: true });
  });

  it("passes its unittest suite with real torch and the built CLI on PATH", { timeout: 600_000 }, async () => {
    const result = await runCompanionPython(["-m", "unittest", "discover", "-s", "python/tests", "-v"], binDir, 590_000);
    const report = `exit ${result.code ?? result.signal}\n${result.stderr.slice(-6000)}`;
    assert.equal(result.code, 0, report);
    const ran = /^Ran (\d+) tests? in /m.exec(result.stderr);
    assert.ok(ran, report);
    assert.ok(Number(ran[1]) >= 60, `only ${ran[1]} tests ran\n${report}`);
    assert.match(result.stderr, /^OK( \(skipped=\d+\))?$/m, report);
    const skipped = [...result.stderr.matchAll(/^(test_\w+) \(.*\) \.\.\. skipped/gm)].map((m) => m[1]);
    assert.deepEqual(skipped.filter((name) => name !== undefined && !MAY_SKIP.has(name)), [], report);
  });

  it("writes progress lines that run's progress feed reads as step, epoch and loss", async () => {
    const file = join(scratch, "progress.jsonl");
    const script = [
      "from ckptguard import Progress",
      `progress = Progress(${JSON.stringify(file)}, min_interval=0)`,
      "progress.report(step=1200, epoch=3, loss=0.41, total_epochs=10, lr=3e-4)",
      "progress.report(step=1300, epoch=3, loss=float('nan'))",
    ].join("\n");
    const result = await runCompanionPython(["-c", script], binDir, 60_000);
    assert.equal(result.code, 0, result.stderr);
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n").map((line) => parseProgressLine(line));
    assert.equal(lines.length, 2);
    assert.deepEqual(
      { step: lines[0]?.step, epoch: lines[0]?.epoch, loss: lines[0]?.loss, totalEpochs: lines[0]?.totalEpochs },
      { step: 1200, epoch: 3, loss: 0.41, totalEpochs: 10 },
    );
    assert.equal(lines[0]?.values.lr, 3e-4);
    assert.equal(typeof lines[0]?.values.time, "number");
    // NaN travels as "nan" (JSON has no NaN): the line still parses, and loss is not a number.
    assert.equal(lines[1]?.step, 1300);
    assert.equal(lines[1]?.loss, undefined);
    assert.equal(lines[1]?.values.loss, "nan");
  });

  it("shows what a script reports with Progress under ckptguard run in status and on the dashboard's API", { timeout: 120_000 }, async () => {
    const dir = join(scratch, "progress-run");
    const release = join(scratch, "progress-release");
    const script = join(scratch, "report_progress.py");
    // Reports, then holds still until the test has looked, then reports once more and exits.
    await writeFile(script, [
      "import os, sys, time",
      "from ckptguard import Progress",
      "progress = Progress(min_interval=0)",
      "assert progress.enabled, 'ckptguard run names the feed in CKPTGUARD_PROGRESS'",
      "progress.report(step=1200, epoch=3, loss=0.41, total_epochs=10, lr=3e-4)",
      "while not os.path.exists(sys.argv[1]):",
      "    time.sleep(0.02)",
      "progress.report(step=1300, epoch=4, loss=0.35)",
    ].join("\n"));
    const env = { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONDONTWRITEBYTECODE: "1", CKPTGUARD_TOKEN: "" };
    const startedAt = Date.now();
    const run = startCli(["run", "--dir", dir, "--heartbeat", "300ms", "--progress-interval", "300ms", "--poll", "200ms", "--quiet",
      "--", TORCH_PYTHON, script, release], env);
    await waitFor("the first report in progress.json", async () =>
      (await readJsonIfPresent(join(dir, ".ckptguard/progress.json")).catch(() => undefined))?.step === 1200, 60_000, 50);

    const live = await runCli(["status", dir, "--json"]);
    assert.equal(live.code, 0, live.stderr);
    const status = JSON.parse(live.stdout);
    assert.deepEqual([status.state, status.alive, status.step, status.epoch, status.loss, status.total_epochs], ["running", true, 1200, 3, 0.41, 10]);
    // When the script last reported: Progress's heartbeat (and the feed) beside progress.jsonl.
    const reportedAt = Date.parse(status.last_report_at);
    assert.ok(reportedAt >= startedAt - 1_000 && reportedAt <= Date.now(), status.last_report_at);
    assert.equal(typeof status.last_report_age_ms, "number");
    const human = await runCli(["status", dir]);
    assert.match(human.stdout, /progress {3}epoch 3\/10, step 1200, loss 0\.41000, .*reported [\d.]+m?s ago/);

    const serve = startCli(["serve", dir, "--port", "0"], env);
    const url = await waitFor("serve's address", () => /at (http:\/\/\S+\/)/.exec(serve.output())?.[1], 20_000, 20);
    const summary = await waitFor("the run on /api/runs", async () => (await getJson(`${url}api/runs`)).json.runs[0], 20_000, 100);
    assert.deepEqual([summary.dir, summary.state, summary.step, summary.epoch, summary.loss, summary.total_epochs], [dir, "running", 1200, 3, 0.41, 10]);
    assert.equal(summary.last_report_at, status.last_report_at);
    const detail = await getJson(`${url}api/runs/${summary.id}`);
    assert.equal(detail.status, 200);
    assert.deepEqual(
      { step: detail.json.progress.reported.step, epoch: detail.json.progress.reported.epoch, loss: detail.json.progress.reported.loss, lr: detail.json.progress.reported.lr },
      { step: 1200, epoch: 3, loss: 0.41, lr: 3e-4 },
    );

    await writeFile(release, "");
    const result = await run.exited;
    assert.equal(result.code, 0, result.stderr);
    const done = JSON.parse((await runCli(["status", dir, "--json"])).stdout);
    assert.deepEqual([done.state, done.step, done.epoch, done.loss], ["completed", 1300, 4, 0.35]);
    assert.ok(Date.parse(done.last_report_at) >= reportedAt);
    const finished = await waitFor("the finished run on /api/runs", async () => {
      const run = (await getJson(`${url}api/runs`)).json.runs[0];
      return run?.state === "finished" ? run : undefined;
    }, 20_000, 100);
    assert.deepEqual([finished.step, finished.epoch, finished.loss], [1300, 4, 0.35]);
    serve.child.kill("SIGINT");
    assert.equal((await serve.exited).code, 0);
  });

  it("runs the README's example, which resumes from the newest valid checkpoint", { timeout: 120_000 }, async () => {
    const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Python companion"));
    const code = /```python\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(code, "the Python companion section has a python example");
    const cwd = await mkdtemp(join(scratch, "readme-"));
    const ckpt = (name: string): string => join(cwd, "ckpt", name);

    const first = await runCompanionPython(["-c", code], binDir, 100_000, cwd);
    assert.equal(first.code, 0, first.stderr);
    const before = await Promise.all(["step_000099.pt", "step_000199.pt"].map(async (n) => (await stat(ckpt(n))).mtimeMs));
    // The newest save is torn: the second run must resume from step 199, not start over.
    await truncate(ckpt("step_000299.pt"), 1000);
    const second = await runCompanionPython(["-c", code], binDir, 100_000, cwd);
    assert.equal(second.code, 0, second.stderr);
    const after = await Promise.all(["step_000099.pt", "step_000199.pt"].map(async (n) => (await stat(ckpt(n))).mtimeMs));
    assert.deepEqual(after, before, "the checkpoints before the resume point are not written again");
    const latest = await runCli(["latest", join(cwd, "ckpt")]);
    assert.equal(latest.stdout.trim(), ckpt("step_000299.pt"), latest.stderr);
  });
});
