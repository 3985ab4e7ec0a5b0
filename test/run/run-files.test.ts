/** The run files on their own: log rotation, the status read from them (alive, stale, dead), stale temp files. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { emptyManifest } from "../../src/manifest/manifest.js";
import { RotatingLog } from "../../src/run/log-file.js";
import { resolveRunOptions } from "../../src/run/options.js";
import { removeStaleTempFiles, runFiles, touchHeartbeat, writePidFile, writeProgress } from "../../src/run/run-files.js";
import { RunTracker } from "../../src/run/run-tracker.js";
import { readRunStatus } from "../../src/run/status.js";
import { scratchDir } from "../helpers/supervised.js";

let dir = "";
before(async () => {
  dir = await scratchDir("run-files");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("run.log rotation", () => {
  it("moves run.log to run.log.1 (and .1 to .2) past the size limit, keeping at most --log-keep old logs", async () => {
    const path = join(dir, "run.log");
    const log = new RotatingLog(path, 100, 2);
    for (let i = 0; i < 7; i++) log.write(`${String(i).repeat(59)}\n`); // 60 bytes: one line per file
    log.close();
    assert.equal(await readFile(path, "utf8"), `${"6".repeat(59)}\n`);
    assert.equal(await readFile(`${path}.1`, "utf8"), `${"5".repeat(59)}\n`);
    assert.equal(await readFile(`${path}.2`, "utf8"), `${"4".repeat(59)}\n`);
    assert.equal(existsSync(`${path}.3`), false);
  });

  it("appends to an existing log, counting its size", async () => {
    const path = join(dir, "append.log");
    await writeFile(path, "x".repeat(90));
    const log = new RotatingLog(path, 100, 1);
    log.write("0123456789\n");
    log.close();
    assert.equal((await readFile(`${path}.1`, "utf8")).length, 90);
    assert.equal(await readFile(path, "utf8"), "0123456789\n");
  });
});

describe("readRunStatus", () => {
  async function runDir(name: string, pid: number, heartbeatMs = 1000) {
    const runRoot = join(dir, name);
    const files = runFiles(join(runRoot, ".ckptguard"));
    await mkdir(files.stateDir, { recursive: true });
    const tracker = new RunTracker(resolveRunOptions({ dir: runRoot, command: ["train"], heartbeatMs }), Date.now(), pid);
    tracker.childStarted(pid, ["train"], Date.now());
    await writePidFile(files, pid);
    await writeProgress(files, tracker.snapshot(emptyManifest(runRoot), Date.now()));
    await touchHeartbeat(files, Date.now());
    return { runRoot, files, tracker };
  }

  it("calls a run alive while its supervisor runs and the heartbeat is fresh", async () => {
    const { runRoot } = await runDir("alive", process.pid);
    const status = await readRunStatus(runRoot);
    assert.deepEqual([status.state, status.alive, status.exit_code], ["running", true, 0]);
  });

  it("calls it stale when the supervisor's pid runs but the heartbeat is older than 3 intervals", async () => {
    const { runRoot, files } = await runDir("stale", process.pid);
    const old = new Date(Date.now() - 3_500);
    await utimes(files.heartbeat, old, old);
    const status = await readRunStatus(runRoot);
    assert.deepEqual([status.state, status.alive, status.exit_code], ["stale", false, 1]);
  });

  it("calls it dead when the supervisor's pid is gone before the run finished", async () => {
    const { runRoot } = await runDir("dead", 2 ** 30); // above any pid_max (at most 2^22): never a process
    const status = await readRunStatus(runRoot);
    assert.deepEqual([status.state, status.alive, status.pid_alive, status.exit_code], ["dead", false, false, 1]);
  });
});

describe("removeStaleTempFiles", () => {
  it("removes temp files of writes a dead supervisor left, and nothing else", async () => {
    const files = runFiles(join(dir, "temps", ".ckptguard"));
    await mkdir(files.stateDir, { recursive: true });
    const deadPid = 2 ** 30;
    const stale = [`.progress.json.${deadPid}.0a1b2c3d.tmp`, `.manifest.json.${deadPid}.ffff0000.tmp`];
    const kept = [`.progress.json.${process.pid}.0a1b2c3d.tmp`, "progress.json", ".ckpt_epoch_0001.pt.77.tmp"];
    for (const name of [...stale, ...kept]) await writeFile(join(files.stateDir, name), "{");
    await writeFile(join(dir, "temps", `.failed_checkpoints.txt.${deadPid}.00ff.tmp`), "");
    assert.equal(await removeStaleTempFiles(files, join(dir, "temps")), 3);
    for (const name of kept) assert.ok(existsSync(join(files.stateDir, name)), name);
  });
});
