/**
 * The run files a supervisor writes stay valid JSON whatever instant it dies at: the
 * supervisor is `kill -9`ed 50 times while it writes progress.json every 10 ms and
 * manifest.json for every checkpoint a fixture script saves every 5 ms.
 */
import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { mulberry32, randomInt } from "../helpers/prng.js";
import { checkpointTemplates, fixture, readJsonIfPresent, scratchDir, startCli, stopAll, waitFor } from "../helpers/supervised.js";

const KILLS = 50;
const SEED = Number(process.env.CKPTGUARD_TEST_SEED ?? 7);

let templates = "";
let dir = "";
before(async () => {
  templates = await checkpointTemplates();
  dir = await scratchDir("supervisor-kill");
});
after(async () => {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
});

const args = (): string[] => [
  "run", "--dir", dir, "--settle", "0ms", "--poll", "20ms", "--heartbeat", "10ms", "--progress-interval", "10ms",
  "--", "node", fixture("saver.mjs"), "--templates", templates, "--every", "5", "--loop",
];

/** Parses a run file if present; a torn write would throw here. */
async function parsed(name: string): Promise<any> {
  const text = await readFile(join(dir, ".ckptguard", name), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${name} is not valid JSON after a kill -9: ${(error as Error).message}\n${text.slice(0, 500)}`);
  }
}

describe("ckptguard run killed with kill -9", () => {
  it(`leaves manifest.json and progress.json valid JSON, ${KILLS} times in a row, and the next start cleans up (seed ${SEED})`, async () => {
    const random = mulberry32(SEED);
    let tornWrites = 0;
    for (let i = 0; i < KILLS; i++) {
      const run = startCli(args());
      await waitFor("the supervisor's first progress.json", async () => {
        if (run.child.exitCode !== null) throw new Error(`launch ${i}: the supervisor exited ${run.child.exitCode}:\n${run.output()}`);
        return (await parsed("progress.json"))?.pid === run.pid;
      }, 60_000, 5).catch((error: Error) => {
        throw new Error(`launch ${i}: ${error.message}; its output so far:\n${run.output()}`);
      });
      await sleep(randomInt(random, 0, 120));
      process.kill(run.pid, "SIGKILL");
      await run.exited;
      const progress = await parsed("progress.json");
      const manifest = await parsed("manifest.json");
      assert.equal(progress.version, 1);
      if (manifest !== undefined) {
        assert.equal(manifest.version, 1);
        assert.ok(Array.isArray(manifest.checkpoints));
      }
      tornWrites += (await readdir(join(dir, ".ckptguard"))).filter((n) => n.endsWith(".tmp")).length;
    }
    // The kills did land mid-write: each write that was cut short left its temp file behind.
    assert.ok(tornWrites > 0, "no kill landed between a temp file's creation and its rename");

    const last = startCli(args());
    await waitFor("a clean start", async () => (await parsed("progress.json"))?.status === "running" && (await parsed("progress.json")).pid === last.pid);
    last.child.kill("SIGTERM");
    assert.equal((await last.exited).code, 1);
    assert.deepEqual((await readdir(join(dir, ".ckptguard"))).filter((n) => n.endsWith(".tmp")), []);
    const manifest = await readJsonIfPresent(join(dir, ".ckptguard", "manifest.json"));
    assert.ok(manifest.checkpoints.length > 0);
    assert.equal((await parsed("progress.json")).status, "stopped");
  });
});
