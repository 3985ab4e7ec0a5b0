/** The checkpoint watcher with an injected clock: what it verifies, when, and what it never touches. */
import assert from "node:assert/strict";
import { copyFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CatalogEntry } from "../../src/catalog/entry.js";
import { CheckpointWatcher } from "../../src/run/watcher.js";
import { checkpointTemplates, scratchDir } from "../helpers/supervised.js";

let templates = "";
let dir = "";

before(async () => {
  templates = await checkpointTemplates();
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function watcherAt(path: string, clock: { now: number }, settleMs = 1000) {
  const verified: CatalogEntry[] = [];
  const gone: string[] = [];
  const watcher = new CheckpointWatcher({
    dir: path, settleMs, pollMs: 60_000, hash: false, deep: false, now: () => clock.now,
    onVerified: (entry) => { verified.push(entry); },
    onGone: (p) => { gone.push(p); },
    onError: (error) => { throw error; },
  });
  return { watcher, verified, gone };
}

describe("CheckpointWatcher", () => {
  it("verifies a new checkpoint only once its size and mtime held still for the settle time", async () => {
    dir = await scratchDir("watcher");
    const clock = { now: 1_000_000 };
    const { watcher, verified } = watcherAt(dir, clock);
    await copyFile(join(templates, "ckpt_epoch_0001.pt"), join(dir, "ckpt_epoch_0001.pt"));
    await watcher.scan();
    clock.now += 999;
    await watcher.scan();
    await watcher.flushQueue();
    assert.equal(verified.length, 0, "not settled yet");
    clock.now += 1;
    await watcher.scan();
    await watcher.flushQueue();
    assert.deepEqual(verified.map((e) => [e.verdict, e.epoch]), [["valid", 1]]);
    await watcher.scan();
    await watcher.flushQueue();
    assert.equal(verified.length, 1, "an unchanged file is verified once");
    watcher.stop();
  });

  it("never verifies a temp-named file, and re-verifies a checkpoint that changed (truncated: corrupt)", async () => {
    const clock = { now: 2_000_000 };
    const { watcher, verified } = watcherAt(dir, clock, 0);
    await copyFile(join(templates, "ckpt_epoch_0002.pt"), join(dir, ".ckpt_epoch_0002.pt.1234.tmp"));
    await writeFile(join(dir, "ckpt_epoch_0003.pt.partial"), "half");
    await watcher.flush();
    assert.deepEqual(verified.map((e) => e.path), [join(dir, "ckpt_epoch_0001.pt")]);
    const size = (await stat(join(dir, "ckpt_epoch_0001.pt"))).size;
    await truncate(join(dir, "ckpt_epoch_0001.pt"), Math.floor(size / 2));
    clock.now += 10;
    await watcher.flush();
    assert.equal(verified.length, 2);
    assert.equal(verified[1]!.verdict, "corrupt");
    assert.ok(verified[1]!.problems.some((p) => p.severity === "error"));
    await unlink(join(dir, ".ckpt_epoch_0002.pt.1234.tmp"));
    await unlink(join(dir, "ckpt_epoch_0003.pt.partial"));
    watcher.stop();
  });

  it("skips files the manifest already knows unchanged, and reports files that disappear", async () => {
    const clock = { now: 3_000_000 };
    const { watcher, verified, gone } = watcherAt(dir, clock, 0);
    const path = join(dir, "ckpt_epoch_0001.pt");
    const info = await stat(path);
    watcher.remember([{ path, size: info.size, mtime: info.mtimeMs }]);
    await watcher.flush();
    assert.equal(verified.length, 0);
    await unlink(path);
    await watcher.flush();
    assert.deepEqual(gone, [path]);
    watcher.stop();
  });
});
