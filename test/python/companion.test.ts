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
