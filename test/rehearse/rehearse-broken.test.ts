/**
 * Deliberately broken variants of a tiny training script (test/rehearse/fixtures/), each
 * rehearsed for real (torch, SIGKILL, restart via {resume}): each fails on its own line
 * with its own reason, and only there.
 */
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { compareFinals } from "../../src/rehearse/compare.js";
import { rehearse, type Rehearsal } from "../../src/rehearse/rehearse.js";
import { scratchDir } from "../helpers/supervised.js";
import { REPO_ROOT, TORCH_PYTHON } from "../helpers/torch.js";

const FIXTURES = join(REPO_ROOT, "test/rehearse/fixtures");
const scratch: string[] = [];
after(async () => {
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

async function rehearseFixture(name: string, epochs: number, sleep: number): Promise<Rehearsal> {
  const dir = await scratchDir(`rehearse-${name}`);
  scratch.push(dir);
  return rehearse({
    dir, epochs, timeoutMs: 60_000,
    command: [TORCH_PYTHON, join(FIXTURES, `${name}.py`), "--out", "{dir}", "--epochs", String(epochs), "--sleep", String(sleep), "--resume", "{resume}"],
  });
}

function failed(result: Rehearsal): Record<string, string> {
  return Object.fromEntries(result.lines.filter((l) => l.status === "FAIL").map((l) => [l.id, l.reason]));
}

describe("rehearse on broken training scripts", () => {
  it("a script that does not restore the optimizer state fails final-match: optimizer state was not restored", async () => {
    const result = await rehearseFixture("broken_no_optimizer_restore", 3, 0.3);
    assert.equal(result.exitCode, 1);
    const lines = failed(result);
    assert.deepEqual(Object.keys(lines), ["final-match"], JSON.stringify(result.lines, null, 1));
    assert.match(lines["final-match"]!, /optimizer state was not restored/);
    assert.match(lines["final-match"]!, /optimizer_state_dict\.state\.0\.step/);
    // --tolerance: the same two files count as equal once the largest difference is allowed.
    const [reference, resumed] = [join(result.dir, "reference/ckpt_epoch_0003.pt"), join(result.dir, "killed/ckpt_epoch_0003.pt")];
    const strict = await compareFinals(reference, resumed, 0);
    assert.equal(strict.outcome, "different");
    assert.ok(strict.differing.includes("optimizer_state_dict.state.0.exp_avg"));
    const loose = await compareFinals(reference, resumed, strict.maxAbsDiff);
    assert.equal(loose.outcome, "within-tolerance");
    assert.ok(loose.maxAbsDiff > 0 && loose.maxAt !== undefined);
  });

  it("a script that restarts the epoch counter at 0 fails resume-position: epoch counter restarted", async () => {
    const result = await rehearseFixture("broken_epoch_reset", 3, 0.3);
    assert.equal(result.exitCode, 1);
    const lines = failed(result);
    assert.ok("resume-position" in lines, JSON.stringify(result.lines, null, 1));
    assert.match(lines["resume-position"]!, /^epoch counter restarted: resumed from ckpt_epoch_\d+\.pt \(epoch \d\), but its next checkpoint ckpt_epoch_0001\.pt records epoch 1/);
    for (const id of ["preflight", "reference-run", "checkpoints-valid", "progress", "kill-leaves-valid"]) {
      assert.equal(result.lines.find((l) => l.id === id)?.status, "PASS", id);
    }
  });

  it("a script that saves in place and is killed mid-save fails kill-leaves-valid naming the half-written file", async () => {
    const result = await rehearseFixture("broken_non_atomic_save", 2, 0);
    assert.equal(result.exitCode, 1);
    const lines = failed(result);
    assert.deepEqual(Object.keys(lines), ["kill-leaves-valid"], JSON.stringify(result.lines, null, 1));
    assert.match(lines["kill-leaves-valid"]!, /ckpt_epoch_0002\.pt is corrupt \(TRUNCATED\): the save is not atomic/);
    // Resuming skipped the half-written file and went back to the whole one before it.
    assert.match(result.lines.find((l) => l.id === "resume-position")!.reason, /resumed from ckpt_epoch_0001\.pt/);
  });

  it("a script that never saves fails reference-run and skips everything after it", async () => {
    const result = await rehearseFixture("broken_never_save", 2, 0);
    assert.equal(result.exitCode, 1);
    assert.deepEqual(Object.keys(failed(result)), ["reference-run"]);
    assert.match(failed(result)["reference-run"]!, /wrote 0 checkpoints/);
    assert.deepEqual(result.lines.filter((l) => l.status === "SKIP").length, 8);
    assert.match(await readFile(result.report, "utf8"), /❌ FAIL \| reference run writes at least 2 checkpoints/);
  });
});
