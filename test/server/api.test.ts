/**
 * The JSON API and the event stream of `ckptguard serve`, on a real server (random loopback
 * port) over run directories made by real `ckptguard run`s of examples/train_tiny.py: one
 * finished, one whose training process was SIGKILLed and restarted, one whose supervisor was
 * SIGKILLed mid-run (crashed).
 */
import assert from "node:assert/strict";
import { realpath, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runId } from "../../src/server/runs.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { finishedRun, getJson, httpRequest, liveRun, readEvents, waitForCheckpoints, type SseReader } from "../helpers/serve.js";
import { killGroupQuietly, readJsonIfPresent, scratchDir, waitFor } from "../helpers/supervised.js";

describe("ckptguard serve: JSON API and events over real runs", () => {
  let root: string;
  let server: RunningServer;
  let events: SseReader;
  /** When each checkpoint count first appeared in the restarted run's manifest.json (its mtime). */
  const manifestTimes = new Map<number, number>();
  const ids: Record<string, string> = {};
  const url = (path: string): string => `${server.url}${path.replace(/^\//, "")}`;

  before(async () => {
    root = await realpath(await scratchDir("serve-api"));
    server = await startServer({ dirs: [root], port: 0, rediscoverMs: 500 });
    events = readEvents(url("/api/events"));

    const restartedDir = join(root, "restarted");
    // --sleep 1: epochs 2 and 3 take over 2 s, so the SIGKILL below always lands on a training
    // process still running (without it, on a loaded machine the run could finish first).
    const restarted = liveRun(restartedDir, 3, [], ["--sleep", "1"]);
    const crashedDir = join(root, "crashed");
    const crashed = liveRun(crashedDir, 30);
    let watching = true;
    const watchManifest = (async () => {
      while (watching) {
        const path = join(restartedDir, ".ckptguard/manifest.json");
        const manifest = await readJsonIfPresent(path).catch(() => undefined);
        const count: number | undefined = manifest?.checkpoints?.length;
        if (count !== undefined && !manifestTimes.has(count)) manifestTimes.set(count, (await stat(path)).mtimeMs);
        await new Promise((r) => setTimeout(r, 40));
      }
    })();

    const [, , ,] = await Promise.all([
      finishedRun(join(root, "finished"), 3),
      (async () => {
        // SIGKILL the training process once it has saved: the supervisor resumes it.
        await waitForCheckpoints(restartedDir, 1);
        const progress = await readJsonIfPresent(join(restartedDir, ".ckptguard/progress.json"));
        killGroupQuietly(progress.child_pid, "SIGKILL");
        const result = await restarted.exited;
        assert.equal(result.code, 0, result.stderr);
      })(),
      (async () => {
        // SIGKILL the supervisor itself (and its training process): nobody writes "finished".
        await waitForCheckpoints(crashedDir, 1);
        const progress = await readJsonIfPresent(join(crashedDir, ".ckptguard/progress.json"));
        crashed.child.kill("SIGKILL");
        killGroupQuietly(progress.child_pid, "SIGKILL");
        await crashed.exited;
      })(),
    ]);
    watching = false;
    await watchManifest;
    for (const name of ["finished", "restarted", "crashed"]) ids[name] = runId(join(root, name));
    // Let the monitor see the final files.
    await waitFor("all three runs settled", async () => {
      const { json } = await getJson(url("/api/runs"));
      const states = Object.fromEntries(json.runs.map((r: any) => [r.name, r.state]));
      return states.finished === "finished" && states.restarted === "finished" && states.crashed === "crashed";
    }, 15_000, 100);
  });

  after(async () => {
    events?.close();
    await server?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("lists the runs found below the directory with stable ids derived from their paths", async () => {
    const { status, json } = await getJson(url("/api/runs"));
    assert.equal(status, 200);
    assert.deepEqual(json.runs.map((r: any) => r.name), ["crashed", "finished", "restarted"]);
    for (const run of json.runs) {
      assert.match(run.id, /^[0-9a-f]{12}$/);
      assert.equal(run.id, ids[run.name]);
      assert.equal(run.dir, join(root, run.name));
    }
    assert.equal(typeof json.now, "number");
  });

  it("reports each run's state: finished, finished after a restart, crashed when its supervisor died", async () => {
    const { json } = await getJson(url("/api/runs"));
    const byName = Object.fromEntries(json.runs.map((r: any) => [r.name, r]));
    assert.deepEqual([byName.finished.state, byName.finished.health, byName.finished.restarts], ["finished", "completed", 0]);
    assert.deepEqual([byName.restarted.state, byName.restarted.health, byName.restarted.restarts], ["finished", "completed", 1]);
    assert.deepEqual([byName.crashed.state, byName.crashed.health], ["crashed", "dead"]);
    assert.deepEqual([byName.finished.epoch, byName.finished.total_epochs, byName.finished.fraction], [3, 3, 1]);
    assert.ok(byName.crashed.fraction > 0 && byName.crashed.fraction < 1);
  });

  it("gives a run's progress, checkpoints with verdicts, best and latest valid", async () => {
    const { status, json } = await getJson(url(`/api/runs/${ids.finished}`));
    assert.equal(status, 200);
    assert.equal(json.run.id, ids.finished);
    assert.equal(json.progress.status, "completed");
    assert.deepEqual(json.checkpoints.map((c: any) => [c.name, c.verdict, c.epoch]), [
      ["ckpt_epoch_0001.pt", "valid", 1], ["ckpt_epoch_0002.pt", "valid", 2], ["ckpt_epoch_0003.pt", "valid", 3],
    ]);
    assert.deepEqual(json.checkpoints.map((c: any) => c.latest_valid), [false, false, true]);
    assert.equal(json.checkpoints.filter((c: any) => c.best).length, 1);
    assert.equal(json.run.latest_valid, "ckpt_epoch_0003.pt");
    assert.equal(json.metric.name, "val_loss"); // train_tiny records val_loss, which ranks before loss
    assert.deepEqual(json.failed, []);
    assert.deepEqual(json.warnings, []);
  });

  it("gives the restart history: the killed training process and the relaunch", async () => {
    const { json } = await getJson(url(`/api/runs/${ids.restarted}`));
    assert.equal(json.restarts.count, 1);
    assert.equal(json.restarts.max, 5);
    const kinds = json.restarts.events.map((e: any) => [e.kind, e.signal ?? e.code ?? null]);
    assert.deepEqual(kinds, [["supervisor", null], ["exit", "SIGKILL"], ["restart", null], ["exit", 0]]);
    assert.equal(json.checkpoints.at(-1).epoch, 3);
  });

  it("gives the log tail, N lines, the newest last", async () => {
    const { status, json } = await getJson(url(`/api/runs/${ids.finished}/log?tail=4`));
    assert.equal(status, 200);
    assert.equal(json.lines.length, 4);
    assert.match(json.lines.at(-1), /ckptguard: run complete$/);
    assert.ok(json.size > 0);
    const whole = await getJson(url(`/api/runs/${ids.finished}/log`));
    assert.ok(whole.json.lines.some((l: string) => l.startsWith("epoch 1/3 loss ")), "the training script's own output is in the log");
  });

  it("refuses a tail that is not a whole number from 1 to 5000", async () => {
    for (const tail of ["0", "-1", "abc", "5001", "1e3", ""]) {
      const { status, json } = await getJson(url(`/api/runs/${ids.finished}/log?tail=${tail}`));
      assert.equal(status, 400, `tail=${tail}`);
      assert.equal(json.error.code, "BAD_REQUEST");
    }
  });

  it("gives the loss series the script reported and the checkpoints recorded, on one step axis", async () => {
    const { status, json } = await getJson(url(`/api/runs/${ids.finished}/metrics`));
    assert.equal(status, 200);
    assert.equal(json.x, "step"); // train_tiny appends {"epoch", "step", "loss", "val_loss"} to CKPTGUARD_PROGRESS
    const series = (name: string, source: string): any => json.series.find((s: any) => s.name === name && s.source === source);
    const fed = series("loss", "feed");
    const saved = series("loss", "checkpoints");
    assert.equal(fed.points.length, 3);
    assert.ok(series("val_loss", "feed"));
    assert.deepEqual(saved.points.map((p: number[]) => p[0]), fed.points.map((p: number[]) => p[0]), "checkpoints are placed at the step their epoch ended");
    assert.ok(fed.points[2][1] < fed.points[0][1], "the tiny model learns");
    assert.ok(!json.series.some((s: any) => s.name.startsWith("config.") || s.name === "epoch"), "configuration and positions are no metric");
  });

  it("answers 404 with a JSON error for an unknown run", async () => {
    for (const path of ["/api/runs/000000000000", "/api/runs/000000000000/log", "/api/runs/nothex", "/api/runs/", "/api/nothing"]) {
      const { status, json } = await getJson(url(path));
      assert.equal(status, 404, path);
      assert.equal(json.error.code, "NOT_FOUND");
    }
  });

  it("answers HEAD without a body", async () => {
    const result = await httpRequest(url("/api/runs"), { method: "HEAD" });
    assert.equal(result.status, 200);
    assert.equal(result.body, "");
    assert.match(String(result.headers["content-type"]), /application\/json/);
  });

  it("keeps a run's id across server restarts", async () => {
    const other = await startServer({ dirs: [root], port: 0 });
    try {
      const { json } = await getJson(`${other.url}api/runs`);
      assert.deepEqual(json.runs.map((r: any) => r.id).sort(), Object.values(ids).sort());
    } finally {
      await other.close();
    }
  });

  it("streamed every run on connect, then each change within 2 s of the run files changing", () => {
    assert.equal(events.events[0]?.event, "runs");
    const updates = events.events.filter((e) => e.event === "run" && e.data.run.id === ids.restarted);
    assert.ok(updates.length >= 3, `got ${updates.length} updates for the restarted run`);
    assert.ok(manifestTimes.size >= 3, `saw ${manifestTimes.size} manifest versions`);
    for (const [count, changedAt] of manifestTimes) {
      if (count === 0) continue;
      const pushed = updates.find((e) => e.data.run.checkpoints.total >= count);
      assert.ok(pushed, `an event showing ${count} checkpoint(s)`);
      const delay = pushed.at - changedAt;
      assert.ok(delay < 2_000, `${count} checkpoint(s): pushed ${delay} ms after manifest.json changed`);
    }
  });

  it("pushes only changes: no run event repeats the summary before it", () => {
    const last = new Map<string, string>();
    for (const e of events.events.filter((x) => x.event === "run")) {
      const text = JSON.stringify(e.data.run);
      assert.notEqual(text, last.get(e.data.run.id));
      last.set(e.data.run.id, text);
    }
  });
});
