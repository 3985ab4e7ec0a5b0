/**
 * CheckpointManifest, the TypeScript side of the completion-marker protocol (docs/markers.md):
 * markers written here are read by the Python companion and the other way round; resume plans
 * skip what is done and redo what no longer checks out; ordered stages redo everything after
 * the first broken one.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CheckpointManifest } from "../../src/manifest/markers.js";
import { markerPath } from "../../src/manifest/marker-file.js";
import { flipByte } from "../helpers/sharded.js";
import { REPO_ROOT, TEST_TMP, TORCH_PYTHON } from "../helpers/torch.js";
import { execFileSync } from "node:child_process";

const FIXTURES = "../shared/fixtures/torch";
const SHA256_OF_HELLO = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

let root = "";
before(async () => {
  await mkdir(TEST_TMP, { recursive: true });
  root = await mkdtemp(join(TEST_TMP, "markers-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let count = 0;
async function runDir(): Promise<CheckpointManifest> {
  const dir = join(root, `run-${++count}`);
  await mkdir(dir, { recursive: true });
  return new CheckpointManifest(dir);
}

async function output(manifest: CheckpointManifest, name: string, content: string): Promise<string> {
  const path = join(manifest.dir, name);
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, content);
  return path;
}

/** Runs Python with the companion importable; returns its stdout. */
function python(code: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): string {
  return execFileSync(TORCH_PYTHON, ["-c", code, ...args], { encoding: "utf8", timeout: 20_000, env: { ...process.env, PYTHONPATH: join(REPO_ROOT, "python"), ...env } });
}

describe("CheckpointManifest.markDone", () => {
  it("writes <dir>/.done/<unit>.done with each output's relative path, size and SHA-256, the time and the worker", async () => {
    const manifest = await runDir();
    const file = await output(manifest, "out/shard_0.txt", "hello");
    const marker = await manifest.markDone("step_10/rank_0", [file], { worker: "node07:1" });
    const onDisk = JSON.parse(await readFile(join(manifest.dir, ".done", "step_10", "rank_0.done"), "utf8"));
    assert.deepEqual(onDisk, marker);
    assert.deepEqual(onDisk.outputs, [{ path: "out/shard_0.txt", size: 5, sha256: SHA256_OF_HELLO }]);
    assert.equal(onDisk.version, 1);
    assert.equal(onDisk.worker, "node07:1");
    assert.match(onDisk.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(await readdir(join(manifest.dir, ".done", "step_10")), ["rank_0.done"], "no temp file left beside it");
  });

  it("refuses unit names that could escape .done/ or hide, with BAD_UNIT_NAME", async () => {
    const manifest = await runDir();
    for (const unit of ["../x", "a/../../b", ".hidden", "-flag", "a//b", "", "a b", "x".repeat(201)]) {
      await assert.rejects(manifest.markDone(unit, []), { code: "BAD_UNIT_NAME" }, unit);
    }
  });

  it("writes no marker when an output is missing (OUTPUT_MISSING) or, with verify, fails verification", async () => {
    const manifest = await runDir();
    await assert.rejects(manifest.markDone("u", [join(manifest.dir, "nope.pt")]), { code: "OUTPUT_MISSING" });
    const torn = join(manifest.dir, "torn.pt");
    await copyFile(join(FIXTURES, "truncated_half.pt"), torn);
    await assert.rejects(manifest.markDone("u", [torn], { verify: true }), /does not verify/);
    assert.equal(await manifest.readMarker("u"), undefined);
    const good = join(manifest.dir, "good.pt");
    await copyFile(join(FIXTURES, "train_adam_v1.pt"), good);
    await manifest.markDone("u", [good], { verify: true });
    assert.equal(await manifest.isDone("u"), true);
  });

  it("is read by the Python companion, whose markers it reads in turn", async () => {
    const manifest = await runDir();
    const file = await output(manifest, "a.txt", "hello");
    await manifest.markDone("from_ts", [file]);
    const answer = python(`from ckptguard import is_done, mark_done
print(is_done("from_ts", directory=${JSON.stringify(manifest.dir)}, check_hashes=True))
mark_done("from_py", [${JSON.stringify(file)}], directory=${JSON.stringify(manifest.dir)}, worker="py")`);
    assert.equal(answer.trim(), "True");
    const marker = await manifest.readMarker("from_py");
    assert.deepEqual([marker?.worker, marker?.outputs], ["py", [{ path: "a.txt", size: 5, sha256: SHA256_OF_HELLO }]]);
    assert.equal(await manifest.isDone("from_py", "hash"), true);
  });
});

describe("CheckpointManifest.unitStatus", () => {
  it("says why a unit is not done: no marker, output gone, size changed, content changed, output fails verify", async () => {
    const manifest = await runDir();
    assert.match((await manifest.unitStatus("u")).reason!, /no valid completion marker/);
    const text = await output(manifest, "a.txt", "hello");
    const ckpt = join(manifest.dir, "model.pt");
    await copyFile(join(FIXTURES, "train_adam_v1.pt"), ckpt);
    await manifest.markDone("u", [text, ckpt]);
    assert.equal((await manifest.unitStatus("u")).done, true);

    await writeFile(text, "HELLO");
    assert.equal((await manifest.unitStatus("u", "size")).done, true, "the cheap check sees the same size");
    assert.match((await manifest.unitStatus("u", "hash")).reason!, /a\.txt changed since it was marked/);
    await writeFile(text, "hello!");
    assert.match((await manifest.unitStatus("u", "size")).reason!, /a\.txt is 6 bytes, marked as 5/);
    await rm(text);
    assert.match((await manifest.unitStatus("u", "size")).reason!, /a\.txt is missing/);
  });

  it("treats a malformed or foreign marker as not done, and a newer protocol version as FUTURE_VERSION", async () => {
    const manifest = await runDir();
    const path = markerPath(manifest.dir, "u");
    await mkdir(join(path, ".."), { recursive: true });
    for (const bad of ["{", "[]", '{"version":1,"unit":"other","outputs":[]}', '{"version":1,"unit":"u","outputs":[{"path":"","size":1,"sha256":"x"}]}']) {
      await writeFile(path, bad);
      assert.equal(await manifest.isDone("u", "size"), false, bad);
    }
    await writeFile(path, '{"version":2,"unit":"u","outputs":[]}');
    await assert.rejects(manifest.isDone("u"), { code: "FUTURE_VERSION" });
  });

  it("reads a FIFO or /dev/zero in place of a marker, and a relative output with .., as not done, here and in the Python companion", async () => {
    const manifest = await runDir();
    await mkdir(join(manifest.dir, ".done"), { recursive: true });
    execFileSync("mkfifo", [markerPath(manifest.dir, "fifo")]);
    await symlink("/dev/zero", markerPath(manifest.dir, "zero"));
    await writeFile(join(manifest.dir, "..", "outside.txt"), "hello");
    await writeFile(markerPath(manifest.dir, "climbs"), JSON.stringify({ version: 1, unit: "climbs", outputs: [{ path: "../outside.txt", size: 5, sha256: SHA256_OF_HELLO }], time: "", worker: "" }));
    for (const unit of ["fifo", "zero", "climbs"]) assert.equal(await manifest.isDone(unit, "hash"), false, unit);
    const answers = python(
      "import json, sys\nfrom ckptguard import _markers as m\n"
      + "print(json.dumps([[m.read_marker(u, directory=sys.argv[1]) is None, m.is_done(u, directory=sys.argv[1], check_hashes=True)] for u in ('fifo', 'zero', 'climbs')]))",
      {}, [manifest.dir]);
    assert.deepEqual(JSON.parse(answers), [[true, false], [true, false], [true, false]]);
  });

  it("refuses a FIFO as an output without waiting for a writer, here and in the Python companion", async () => {
    const manifest = await runDir();
    const fifo = join(manifest.dir, "out.fifo");
    execFileSync("mkfifo", [fifo]);
    await assert.rejects(manifest.markDone("u", [fifo]), { code: "OUTPUT_MISSING", message: /is not a regular file/ });
    const refused = python("import sys\nfrom ckptguard import _markers as m\ntry:\n    m.mark_done('u', [sys.argv[2]], directory=sys.argv[1])\nexcept ValueError as e:\n    print(e)", {}, [manifest.dir, fifo]);
    assert.match(refused, /is not a regular file/);
    assert.equal(await manifest.readMarker("u"), undefined);
  });
});

describe("CheckpointManifest.planResume", () => {
  it("skips units that are done, redoes the rest, and removes the markers whose outputs no longer verify", async () => {
    const manifest = await runDir();
    const units = ["u0", "u1", "u2", "u3"];
    for (const unit of units.slice(0, 3)) {
      const ckpt = join(manifest.dir, `${unit}.pt`);
      await copyFile(join(FIXTURES, "train_adam_v1.pt"), ckpt);
      await manifest.markDone(unit, [ckpt]);
    }
    // u1's output rots in place: same size, one byte flipped inside tensor data (its CRC fails).
    const rotted = join(manifest.dir, "u1.pt");
    await copyFile(join(FIXTURES, "bitflip_tensor_data.pt"), rotted);
    await manifest.markDone("u1", [rotted]);
    await flipByte(rotted, 0); // now the marker's hash is stale too; but even a re-marked corrupt file must not count
    const plan = await manifest.planResume(units);
    assert.deepEqual(plan.done, ["u0", "u2"]);
    assert.deepEqual(plan.pending, ["u1", "u3"]);
    assert.deepEqual(plan.removed.map((r) => r.unit), ["u1"]);
    assert.equal(await manifest.readMarker("u1"), undefined, "the stale marker is gone");
    assert.deepEqual(await manifest.doneUnits(), ["u0", "u2"]);
  });

  it("refuses a unit listed twice", async () => {
    const manifest = await runDir();
    await assert.rejects(manifest.planResume(["a", "b", "a"]), /listed twice/);
  });
});

describe("CheckpointManifest.planOrderedResume", () => {
  it("stops at the first corrupt stage, removes every later stage's marker, and says where it resumes", async () => {
    const manifest = await runDir();
    const stages = ["stage_1", "stage_2", "stage_3", "stage_4", "stage_5"];
    for (const stage of stages) {
      const ckpt = join(manifest.dir, `${stage}.pt`);
      await copyFile(join(FIXTURES, "train_adam_v1.pt"), ckpt);
      await manifest.markDone(stage, [ckpt]);
    }
    await truncate(join(manifest.dir, "stage_3.pt"), 1000);
    const plan = await manifest.planOrderedResume(stages);
    assert.equal(plan.line, "Progress: 2/5 stages complete, resuming from: stage_3");
    assert.deepEqual([plan.done, plan.pending, plan.resumeFrom, plan.total], [["stage_1", "stage_2"], ["stage_3", "stage_4", "stage_5"], "stage_3", 5]);
    assert.deepEqual(plan.removed.map((r) => r.unit), ["stage_3", "stage_4", "stage_5"]);
    assert.match(plan.removed[1]!.reason, /comes after stage_3/);
    assert.deepEqual(await manifest.doneUnits(), ["stage_1", "stage_2"], "stages 4 and 5 were built on stage 3 and are redone too");
  });

  it("a missing middle stage counts like a corrupt one; with every stage done there is nothing to resume", async () => {
    const manifest = await runDir();
    for (const stage of ["a", "c"]) await manifest.markDone(stage, [await output(manifest, `${stage}.txt`, stage)]);
    const plan = await manifest.planOrderedResume(["a", "b", "c"], "hash");
    assert.equal(plan.line, "Progress: 1/3 stages complete, resuming from: b");
    assert.deepEqual(await manifest.doneUnits(), ["a"]);
    await manifest.markDone("b", [await output(manifest, "b.txt", "b")]);
    await manifest.markDone("c", [await output(manifest, "c.txt", "c")]);
    const finished = await manifest.planOrderedResume(["a", "b", "c"], "hash");
    assert.deepEqual([finished.line, finished.pending, finished.resumeFrom], ["Progress: 3/3 stages complete, nothing to resume", [], undefined]);
  });
});
