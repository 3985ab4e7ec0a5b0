/**
 * `ckptguard run --force-resume PATH [--skip-validation]`, as real processes: the supervised
 * command is test/run/fixtures/saver.mjs, which "saves" real torch checkpoints and records
 * what each launch was told to resume from.
 */
import assert from "node:assert/strict";
import { copyFile, readFile, rm, truncate, utimes } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../helpers/torch.js";
import { checkpointTemplates, FAST_RUN_FLAGS, fixture, readJsonIfPresent, scratchDir } from "../helpers/supervised.js";


let templates = "";
const scratch: string[] = [];

before(async () => {
  templates = await checkpointTemplates();
});
after(async () => {
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

const name = (epoch: number): string => `ckpt_epoch_${String(epoch).padStart(4, "0")}.pt`;

/** A run directory already holding epochs 1..`upTo`, written an hour before the run. */
async function dirWithOldCheckpoints(prefix: string, upTo: number): Promise<{ dir: string; record: string }> {
  const dir = await scratchDir(prefix);
  const record = `${dir}.launches`;
  scratch.push(dir, record);
  const anHourAgo = new Date(Date.now() - 3_600_000);
  for (let epoch = 1; epoch <= upTo; epoch++) {
    await copyFile(join(templates, name(epoch)), join(dir, name(epoch)));
    await utimes(join(dir, name(epoch)), anHourAgo, anHourAgo);
  }
  return { dir, record };
}

const saver = (record: string, ...extra: string[]): string[] =>
  ["node", fixture("saver.mjs"), "--templates", templates, "--every", "40", "--record", record, "--resume", "{resume}", ...extra];

async function resumesOfEachLaunch(record: string): Promise<Array<string | null>> {
  const text = await readFile(record, "utf8").catch(() => "");
  return text.trim().split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { resume_env: string | null }).resume_env);
}

describe("ckptguard run --force-resume", () => {
  it("resumes from the named checkpoint though newer valid ones exist, and after a crash from the run's own newest", async () => {
    const { dir, record } = await dirWithOldCheckpoints("force-resume", 4);
    const forced = join(dir, name(2));
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--force-resume", forced, "--", ...saver(record, "--die-after", "1")]);
    assert.equal(result.code, 0, result.stderr);
    // Launch 1 resumes from epoch 2 (not 4) and saves 3; each relaunch resumes from what the run saved last.
    assert.deepEqual(await resumesOfEachLaunch(record), [2, 3, 4, 5, 6].map((epoch) => join(dir, name(epoch))));
    assert.match(result.stderr, /--force-resume: resuming from .*ckpt_epoch_0002\.pt, verified/);
    assert.match(result.stderr, /--force-resume: .*ckpt_epoch_0004\.pt predates this run and is not resumed from/);
    const progress = await readJsonIfPresent(join(dir, ".ckptguard", "progress.json"));
    assert.equal(progress.status, "completed");
    assert.deepEqual(progress.warnings, []);
  });

  it("goes back to the named checkpoint when the run crashes before saving one of its own", async () => {
    const { dir, record } = await dirWithOldCheckpoints("force-resume-again", 4);
    const forced = join(dir, name(3));
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--max-restarts", "1", "--force-resume", forced, "--",
      "node", fixture("exit-with.mjs"), "3"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /RESTARTS_EXHAUSTED/);
    const resumes = [...result.stderr.matchAll(/resuming from: (\S+)/g)].map((m) => m[1]);
    assert.deepEqual(resumes, [forced, forced]);
  });

  it("refuses a named checkpoint that does not verify, and starts nothing (FORCED_RESUME_INVALID)", async () => {
    const { dir, record } = await dirWithOldCheckpoints("force-resume-torn", 3);
    await truncate(join(dir, name(2)), 2000);
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--force-resume", join(dir, name(2)), "--", ...saver(record)]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /FORCED_RESUME_INVALID: --force-resume .*ckpt_epoch_0002\.pt is corrupt \(TRUNCATED: /);
    assert.deepEqual(await resumesOfEachLaunch(record), [], "the command never started");
    const progress = await readJsonIfPresent(join(dir, ".ckptguard", "progress.json"));
    assert.equal(progress.status, "failed");
    assert.equal(progress.outcome.code, "FORCED_RESUME_INVALID");
  });

  it("refuses a path that does not exist, even with --skip-validation", async () => {
    const { dir, record } = await dirWithOldCheckpoints("force-resume-missing", 1);
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--force-resume", join(dir, "nope.pt"), "--skip-validation", "--", ...saver(record)]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /FORCED_RESUME_INVALID: --force-resume .*nope\.pt: no such file or directory/);
    assert.deepEqual(await resumesOfEachLaunch(record), []);
  });

  it("with --skip-validation resumes from it unverified, warning loudly in the log, progress.json and status", async () => {
    const { dir, record } = await dirWithOldCheckpoints("force-resume-skip", 5);
    await truncate(join(dir, name(5)), 2000);
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--force-resume", join(dir, name(5)), "--skip-validation", "--", ...saver(record)]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await resumesOfEachLaunch(record), [join(dir, name(5))]);
    assert.match(result.stderr, /WARNING VALIDATION_SKIPPED: resuming from .*ckpt_epoch_0005\.pt WITHOUT verifying it/);
    assert.match(result.stderr, /resuming from: .*ckpt_epoch_0005\.pt \(NOT VERIFIED: --skip-validation\)/);
    const progress = await readJsonIfPresent(join(dir, ".ckptguard", "progress.json"));
    assert.deepEqual(progress.warnings.map((w: { code: string }) => w.code), ["VALIDATION_SKIPPED"]);
    const status = await runCli(["status", dir, "--json"]);
    assert.equal(status.code, 1, "a run resumed from an unverified checkpoint is not reported healthy");
    assert.deepEqual(JSON.parse(status.stdout).warnings.map((w: { code: string }) => w.code), ["VALIDATION_SKIPPED"]);
  });

  it("rejects --skip-validation without --force-resume, and --force-resume with --fresh, as usage errors", async () => {
    const { dir, record } = await dirWithOldCheckpoints("force-resume-usage", 1);
    const alone = await runCli(["run", "--dir", dir, "--skip-validation", "--", ...saver(record)]);
    assert.equal(alone.code, 2, alone.stderr);
    assert.match(alone.stderr, /skipValidation/);
    const both = await runCli(["run", "--dir", dir, "--fresh", "--force-resume", join(dir, name(1)), "--", ...saver(record)]);
    assert.equal(both.code, 2, both.stderr);
    assert.deepEqual(await resumesOfEachLaunch(record), []);
  });
});
