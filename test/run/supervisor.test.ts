/**
 * `ckptguard run` and `ckptguard status` as real processes, with real signals, supervising
 * tiny fixture scripts (test/run/fixtures/) that "save" real torch checkpoints.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../helpers/torch.js";
import { checkpointTemplates, FAST_RUN_FLAGS, fixture, killGroupQuietly, readJsonIfPresent, scratchDir, startCli, stopAll, waitFor } from "../helpers/supervised.js";
import { isAlive } from "../../src/run/child.js";
import { readRunStatus } from "../../src/run/status.js";


let templates = "";
const scratch: string[] = [];

before(async () => {
  templates = await checkpointTemplates();
});
after(async () => {
  await stopAll();
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

async function newDir(name: string): Promise<string> {
  const dir = await scratchDir(name);
  scratch.push(dir);
  return dir;
}

const saver = (...extra: string[]): string[] => ["node", fixture("saver.mjs"), "--templates", templates, "--every", "40", ...extra];
const launches = async (record: string): Promise<any[]> => (await readFile(record, "utf8")).trim().split("\n").map((l) => JSON.parse(l));
const stateOf = (dir: string, name: string): string => join(dir, ".ckptguard", name);

describe("ckptguard run: restarts", () => {
  it("relaunches a crashing command from the newest valid checkpoint through {resume} and CKPTGUARD_RESUME, then completes", async () => {
    const dir = await newDir("run-restart");
    const record = join(dir, "..", `${dir.split("/").pop()}.launches`);
    scratch.push(record);
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--final-check", "--", ...saver("--die-after", "2", "--record", record, "--resume", "{resume}")]);
    assert.equal(result.code, 0, result.stderr);
    const runs = await launches(record);
    assert.equal(runs.length, 4, "died after 2, 4 and 6; the 4th launch has nothing left and exits 0");
    assert.equal(runs[0].argv.includes("--resume"), false, "fresh start: `--resume {resume}` vanished");
    assert.equal(runs[0].resume_env, null);
    for (const [i, expected] of [[1, "ckpt_epoch_0002.pt"], [2, "ckpt_epoch_0004.pt"]] as const) {
      assert.equal(runs[i].argv[runs[i].argv.indexOf("--resume") + 1], join(dir, expected));
      assert.equal(runs[i].resume_env, join(dir, expected));
      assert.equal(runs[i].dir_env, dir);
      assert.equal(runs[i].progress_env, stateOf(dir, "progress.jsonl"));
    }
    assert.match(result.stderr, /Progress: 2\/6 epochs complete, resuming from: .*ckpt_epoch_0002\.pt/);
    assert.match(result.stderr, /Progress: 4\/6 epochs complete, resuming from: .*ckpt_epoch_0004\.pt/);
    assert.match(result.stderr, /final check passed/);

    const progress = await readJsonIfPresent(stateOf(dir, "progress.json"));
    assert.equal(progress.status, "completed");
    assert.equal(progress.restarts, 3);
    assert.equal(progress.latest_valid.path, join(dir, "ckpt_epoch_0006.pt"));
    assert.equal(progress.best.path, join(dir, "ckpt_epoch_0004.pt"), "val_loss is lowest at epoch 4");
    assert.deepEqual([progress.epoch, progress.total_epochs], [6, 6]);
    const manifest = await readJsonIfPresent(stateOf(dir, "manifest.json"));
    assert.deepEqual(manifest.checkpoints.map((c: any) => [c.epoch, c.verdict]), [1, 2, 3, 4, 5, 6].map((e) => [e, "valid"]));
    assert.equal(manifest.latest_valid, join(dir, "ckpt_epoch_0006.pt"));
    const log = await readFile(stateOf(dir, "run.log"), "utf8");
    assert.match(log, /saved ckpt_epoch_0001\.pt/, "child output is in run.log");
    assert.match(log, /ckptguard: Progress: 2\/6 epochs complete, resuming from:/);
    assert.equal((await readFile(stateOf(dir, "pid"), "utf8")).trim(), String(progress.pid));
    assert.ok((await stat(stateOf(dir, "heartbeat"))).isFile());

    const status = await runCli(["status", dir, "--json"]);
    assert.equal(status.code, 0);
    assert.equal(JSON.parse(status.stdout).state, "completed");
  });

  it("waits longer before each relaunch and gives up after --max-restarts with RESTARTS_EXHAUSTED", async () => {
    const dir = await newDir("run-exhaust");
    const record = join(dir, "launches.jsonl");
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--backoff", "150ms", "--max-restarts", "2", "--", "node", fixture("exit-with.mjs"), "7", "0", record]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /RESTARTS_EXHAUSTED/);
    const at = (await launches(record)).map((r) => r.at as number);
    assert.equal(at.length, 3);
    assert.ok(at[1]! - at[0]! >= 150, `first wait ${at[1]! - at[0]!} ms`);
    assert.ok(at[2]! - at[1]! >= 300, `second wait ${at[2]! - at[1]!} ms (doubled)`);
    const progress = await readJsonIfPresent(stateOf(dir, "progress.json"));
    assert.equal(progress.status, "failed");
    assert.equal(progress.outcome.code, "RESTARTS_EXHAUSTED");
    assert.deepEqual(progress.last_exit.code, 7);
  });

  it("resumes from the one before when the newest checkpoint is truncated before a crash, and lists it in failed_checkpoints.txt", async () => {
    const dir = await newDir("run-truncated");
    const run = startCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--", ...saver("--stop-saving-after", "3", "--then", "hang", "--resume", "{resume}")]);
    const manifestPath = stateOf(dir, "manifest.json");
    await waitFor("3 valid checkpoints", async () => (await readJsonIfPresent(manifestPath))?.latest_valid === join(dir, "ckpt_epoch_0003.pt"));
    const { child_pid: childPid } = await readJsonIfPresent(stateOf(dir, "progress.json"));
    process.kill(childPid, "SIGSTOP"); // nothing is saved between the truncation and the crash
    const newest = join(dir, "ckpt_epoch_0003.pt");
    await truncate(newest, Math.floor((await stat(newest)).size / 2));
    process.kill(childPid, "SIGKILL");
    await waitFor("the relaunch", () => /resuming from: .*ckpt_epoch_0002\.pt/.test(run.output()));
    assert.match(run.output(), /ckpt_epoch_0003\.pt: corrupt \(.*\); listed in failed_checkpoints\.txt/);
    const failed = await readFile(join(dir, "failed_checkpoints.txt"), "utf8");
    assert.match(failed, new RegExp(`^${newest}\tcorrupt\t[A-Z_]+: .+$`, "m"));
    const manifest = await readJsonIfPresent(manifestPath);
    assert.equal(manifest.failed[0].path, newest);
    run.child.kill("SIGTERM");
    assert.equal((await run.exited).code, 1);
  });

  it("continues a run when started again on its directory, and --fresh ignores what is there", async () => {
    const dir = await newDir("run-continue");
    const record = join(dir, "launches.jsonl");
    const first = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--max-restarts", "0", "--", ...saver("--die-after", "3", "--record", record, "--resume", "{resume}")]);
    assert.equal(first.code, 1);
    const second = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--", ...saver("--record", record, "--resume", "{resume}")]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /Progress: 3\/\? epochs complete, resuming from: .*ckpt_epoch_0003\.pt/);
    const third = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--fresh", "--", ...saver("--record", record, "--resume", "{resume}")]);
    assert.equal(third.code, 0, third.stderr);
    const runs = await launches(record);
    assert.deepEqual(runs.map((r) => r.resume_env), [null, join(dir, "ckpt_epoch_0003.pt"), null]);
  });
});

describe("ckptguard run: completion and retention", () => {
  it("--final-check fails a run whose command exits 0 short of --total-epochs, or without any checkpoint", async () => {
    const dir = await newDir("run-final");
    const short = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--final-check", "--total-epochs", "10", "--", ...saver()]);
    assert.equal(short.code, 1);
    assert.match(short.stderr, /FINAL_CHECK_FAILED: final checkpoint ckpt_epoch_0006\.pt is at epoch 6 of 10/);
    const empty = await newDir("run-final-empty");
    const none = await runCli(["run", "--dir", empty, ...FAST_RUN_FLAGS, "--final-check", "--", "node", fixture("exit-with.mjs"), "0"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /FINAL_CHECK_FAILED: no checkpoint/);
    assert.equal((await readJsonIfPresent(stateOf(empty, "progress.json"))).outcome.code, "FINAL_CHECK_FAILED");
  });

  it("--keep-last 2 --keep-best 1 deletes older checkpoints only after newer ones verify, keeping the newest and the best (with --hash, --deep)", async () => {
    const dir = await newDir("run-retention");
    const result = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--keep-last", "2", "--keep-best", "1", "--metric", "val_loss", "--mode", "min", "--hash", "--deep", "--", ...saver()]);
    assert.equal(result.code, 0, result.stderr);
    const left = (await readdir(dir)).filter((n) => n.endsWith(".pt")).sort();
    assert.deepEqual(left, ["ckpt_epoch_0004.pt", "ckpt_epoch_0005.pt", "ckpt_epoch_0006.pt"]);
    assert.match(result.stderr, /retention: deleted ckpt_epoch_0001\.pt/);
    const manifest = await readJsonIfPresent(stateOf(dir, "manifest.json"));
    assert.deepEqual(manifest.checkpoints.map((c: any) => c.epoch), [4, 5, 6]);
    assert.equal(manifest.best, join(dir, "ckpt_epoch_0004.pt"));
    for (const c of manifest.checkpoints) assert.equal(c.sha256, createHash("sha256").update(await readFile(c.path)).digest("hex"), "--hash");
  });
});

describe("ckptguard run: signals", () => {
  it("passes SIGTERM to the command's process group and stops without relaunching", async () => {
    const dir = await newDir("run-sigterm");
    const run = startCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--", "node", fixture("hang.mjs")]);
    await waitFor("the command", () => run.output().includes("ready"));
    run.child.kill("SIGTERM");
    const result = await run.exited;
    assert.equal(result.code, 1);
    assert.match(result.stdout, /got SIGTERM, exiting/);
    assert.equal((result.stderr.match(/starting: /g) ?? []).length, 1);
    const progress = await readJsonIfPresent(stateOf(dir, "progress.json"));
    assert.equal(progress.status, "stopped");
    assert.equal(progress.outcome.code, "RUN_STOPPED");
  });

  it("SIGKILLs a command that ignores SIGTERM once --kill-after has passed", async () => {
    const dir = await newDir("run-killafter");
    const run = startCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--kill-after", "300ms", "--", "node", fixture("ignore-term.mjs")]);
    await waitFor("the command", () => run.output().includes("ready"));
    const sent = Date.now();
    run.child.kill("SIGTERM");
    const result = await run.exited;
    assert.match(result.stdout, /got SIGTERM, ignoring it/);
    assert.ok(Date.now() - sent >= 300);
    assert.equal((await readJsonIfPresent(stateOf(dir, "progress.json"))).last_exit.signal, "SIGKILL");
  });

  it("a second SIGINT kills the command at once", async () => {
    const dir = await newDir("run-sigint");
    const run = startCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--kill-after", "60s", "--", "node", fixture("ignore-term.mjs")]);
    await waitFor("the command", () => run.output().includes("ready"));
    run.child.kill("SIGINT");
    await waitFor("the command to get SIGINT", () => run.output().includes("got SIGINT, ignoring it"));
    run.child.kill("SIGINT");
    const result = await run.exited;
    assert.equal(result.code, 1);
    assert.match(result.stderr, /second SIGINT: killing/);
    assert.equal((await readJsonIfPresent(stateOf(dir, "progress.json"))).last_exit.signal, "SIGKILL");
  });

  it("stops a command left running by a supervisor killed with -9 before launching again", async () => {
    const dir = await newDir("run-orphan");
    const first = startCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--", "node", fixture("hang.mjs")]);
    await waitFor("the command", () => first.output().includes("ready"));
    const { child_pid: orphan } = await readJsonIfPresent(stateOf(dir, "progress.json"));
    process.kill(first.pid, "SIGKILL");
    await first.exited;
    try {
      assert.equal(isAlive(orphan), true, "the command outlives its supervisor");
      const second = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--kill-after", "2s", "--", "node", fixture("exit-with.mjs"), "0"]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, new RegExp(`stopped pid ${orphan}, left running by a supervisor that died`));
      assert.equal(isAlive(orphan), false);
    } finally {
      killGroupQuietly(orphan);
    }
  });
});

describe("ckptguard run --max-gap, --detach and ckptguard status", () => {
  it("warns when the script stops saving; status exits 1 with SAVE_GAP, and says dead after the supervisor is killed", async () => {
    const dir = await newDir("run-gap");
    const run = startCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--max-gap", "1500ms", "--", ...saver("--stop-saving-after", "2", "--then", "hang")]);
    const progressPath = stateOf(dir, "progress.json");
    // In-process (the CLI's own function): a CLI launch on a loaded machine may take longer than the gap.
    const healthy = await waitFor("a healthy status", async () => {
      const s = await readRunStatus(dir).catch(() => undefined);
      return s?.latest_valid?.path === join(dir, "ckpt_epoch_0002.pt") ? s : undefined;
    });
    assert.deepEqual([healthy.alive, healthy.state, healthy.exit_code, healthy.warnings], [true, "running", 0, []]);
    const progress = await waitFor("the SAVE_GAP warning", async () => {
      const p = await readJsonIfPresent(progressPath);
      return p?.warnings.some((w: any) => w.code === "SAVE_GAP") ? p : undefined;
    });
    assert.match(progress.warnings[0].message, /no new valid checkpoint for .* since the last one \(--max-gap 1\.5s\)/);
    assert.match(await readFile(stateOf(dir, "run.log"), "utf8"), /WARNING SAVE_GAP: no new valid checkpoint/);
    const warned = await runCli(["status", dir, "--json"]);
    assert.equal(warned.code, 1);
    assert.equal(JSON.parse(warned.stdout).state, "running");
    assert.deepEqual(JSON.parse(warned.stdout).warnings.map((w: any) => w.code), ["SAVE_GAP"]);

    process.kill(run.pid, "SIGKILL");
    await run.exited;
    killGroupQuietly(progress.child_pid);
    const dead = await runCli(["status", dir]);
    assert.equal(dead.code, 1);
    assert.match(dead.stdout, /: dead \(supervisor pid \d+ not running/);
    const deadJson = JSON.parse((await runCli(["status", dir, "--json"])).stdout);
    assert.deepEqual([deadJson.state, deadJson.alive, deadJson.pid_alive], ["dead", false, false]);
  });

  it("--detach prints the pid and the log; status sees the run alive; a second run on the directory is refused", async () => {
    const dir = await newDir("run-detach");
    const started = await runCli(["run", "--dir", dir, ...FAST_RUN_FLAGS, "--detach", "--", "node", fixture("hang.mjs")]);
    assert.equal(started.code, 0, started.stderr);
    const pid = Number(/pid (\d+)/.exec(started.stdout)?.[1]);
    assert.ok(pid > 0, started.stdout);
    assert.ok(started.stdout.includes(stateOf(dir, "run.log")));
    try {
      const status = await waitFor("the detached run to be running", async () => {
        const s = JSON.parse((await runCli(["status", dir, "--json"])).stdout);
        return s.state === "running" ? s : undefined;
      });
      assert.deepEqual([status.alive, status.pid, status.child_alive], [true, pid, true]);
      const second = await runCli(["run", "--dir", dir, "--", "node", fixture("hang.mjs")]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /RUN_ACTIVE: .*another ckptguard run \(pid \d+\)/);
      await waitFor("ready in run.log", async () => (await readFile(stateOf(dir, "run.log"), "utf8")).includes("ready"));
    } finally {
      process.kill(pid, "SIGTERM");
    }
    const stopped = await waitFor("the run to stop", async () => {
      const s = await runCli(["status", dir, "--json"]);
      return JSON.parse(s.stdout).state === "stopped" ? s : undefined;
    });
    assert.equal(stopped.code, 1);
  });

  it("status on a directory that never had a run exits 1 with NOT_A_RUN", async () => {
    const dir = await newDir("run-none");
    const result = await runCli(["status", dir]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /NOT_A_RUN/);
  });
});
