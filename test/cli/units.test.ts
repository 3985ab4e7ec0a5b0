/**
 * `ckptguard mark-done` and `ckptguard units` as a shell worker and an operator use them:
 * real processes, real torch checkpoints from the shared fixtures.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, TEST_TMP } from "../helpers/torch.js";

const FIXTURES = "../shared/fixtures/torch";
const SHA256_OF_HELLO = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const STAGES = ["stage_1", "stage_2", "stage_3", "stage_4"];

let root = "";
before(async () => {
  await mkdir(TEST_TMP, { recursive: true });
  root = await mkdtemp(join(TEST_TMP, "units-cli-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A run directory whose four stages each saved a real checkpoint and were marked done by the CLI. */
async function finishedStages(name: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir);
  for (const stage of STAGES) {
    const out = join(dir, `${stage}.pt`);
    await copyFile(join(FIXTURES, "train_adam_v1.pt"), out);
    const marked = await runCli(["mark-done", dir, stage, out, "--verify", "--worker", "w0"]);
    assert.equal(marked.code, 0, marked.stderr);
    assert.equal(marked.stdout, `${join(dir, ".done", `${stage}.done`)}\n`);
  }
  return dir;
}

describe("ckptguard mark-done", () => {
  it("writes a marker the protocol describes, with the output's size and hash", async () => {
    const dir = join(root, "mark");
    await mkdir(dir);
    await writeFile(join(dir, "part-0.txt"), "hello");
    const result = await runCli(["mark-done", dir, "part_0", join(dir, "part-0.txt"), "--worker", "bash:1"]);
    assert.equal(result.code, 0, result.stderr);
    const marker = JSON.parse(await readFile(join(dir, ".done", "part_0.done"), "utf8"));
    assert.deepEqual([marker.version, marker.unit, marker.worker, marker.outputs[0].path, marker.outputs[0].size], [1, "part_0", "bash:1", "part-0.txt", 5]);
  });

  it("refuses a FIFO output and a .done that is a file in one line each, without waiting or a stack", async () => {
    const dir = join(root, "not-files");
    await mkdir(dir);
    const fifo = join(dir, "out.fifo");
    execFileSync("mkfifo", [fifo]);
    const onFifo = await runCli(["mark-done", dir, "u", fifo], { timeoutMs: 10_000 });
    assert.equal(onFifo.code, 1, onFifo.stderr);
    assert.match(onFifo.stderr, /^ckptguard: .*OUTPUT_MISSING: output .*out\.fifo is not a regular file\n$/);
    const file = join(dir, "out.bin");
    await writeFile(file, "hello");
    await writeFile(join(dir, ".done"), "not a directory");
    const onFile = await runCli(["mark-done", dir, "u", file], { timeoutMs: 10_000 });
    assert.equal(onFile.code, 1, onFile.stderr);
    assert.match(onFile.stderr, /^ckptguard: .*NOT_A_DIRECTORY: cannot write the marker: .*\.done is a file, not a directory\n$/);
  });

  it("refuses, in one line and without a marker, a truncated checkpoint (--verify), a missing output and a bad unit name", async () => {
    const dir = join(root, "refuse");
    await mkdir(dir);
    const torn = join(dir, "torn.pt");
    await copyFile(join(FIXTURES, "truncated_half.pt"), torn);
    const cases: Array<[string[], RegExp]> = [
      [["u", torn, "--verify"], /TRUNCATED: u: output .*torn\.pt does not verify/],
      [["u", join(dir, "absent.pt")], /OUTPUT_MISSING: output .*absent\.pt cannot be opened \(ENOENT\)/],
      [["../escape", torn], /BAD_UNIT_NAME: unit must be/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(["mark-done", dir, ...args]);
      assert.equal(result.code, 1, args.join(" "));
      assert.match(result.stderr, message);
      assert.equal(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
    }
    const listing = await runCli(["units", dir, "--units", "u", "--json"]);
    assert.equal(JSON.parse(listing.stdout).done, 0);
  });
});

describe("a run directory that does not exist", () => {
  it("is one NOT_FOUND line from mark-done and units, never a new tree of markers or a list of pending units", async () => {
    const missing = join(root, "no-such-run");
    for (const args of [["mark-done", missing, "u"], ["units", missing, "--units", "u"]]) {
      const result = await runCli(args);
      assert.equal(result.code, 1, args.join(" "));
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^ckptguard: .*no-such-run: NOT_FOUND: run directory does not exist\n$/);
    }
    await assert.rejects(stat(missing), { code: "ENOENT" });
  });
});

describe("ckptguard units", () => {
  it("exits 0 and lists who did each unit when every unit is done", async () => {
    const dir = await finishedStages("all-done");
    const result = await runCli(["units", dir, "--units", STAGES.join(",")]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^done {5}stage_1 \(w0, \d{4}-/m);
    assert.match(result.stdout, /Progress: 4\/4 units complete\n$/);
  });

  it("--ordered with a corrupt middle stage: redo it and every later stage; read-only until --repair removes their markers", async () => {
    const dir = await finishedStages("corrupt-middle");
    await truncate(join(dir, "stage_2.pt"), 4096);
    const args = ["units", dir, "--units", STAGES.join(","), "--ordered"];
    const look = await runCli([...args, "--json"]);
    assert.equal(look.code, 1);
    const report = JSON.parse(look.stdout);
    assert.deepEqual([report.done, report.pending, report.resume_from], [1, 3, "stage_2"]);
    assert.match(report.units[1].reason, /stage_2\.pt is 4096 bytes, marked as \d+/);
    assert.match(report.units[2].reason, /comes after stage_2/);
    assert.deepEqual(report.removed, []);

    const repair = await runCli([...args, "--repair"]);
    assert.equal(repair.code, 1);
    assert.match(repair.stdout, /removed marker of stage_3: comes after stage_2, which is redone/);
    assert.match(repair.stdout, /Progress: 1\/4 stages complete, resuming from: stage_2\n$/);
    const after = JSON.parse((await runCli(["units", dir, "--units", STAGES.join(","), "--json", "--check", "size"])).stdout);
    assert.deepEqual(after.units.map((u: any) => u.done), [true, false, false, false], "only stage_1's marker is left");
    assert.match(after.units[3].reason, /no valid completion marker/);
  });

  it("reads --units-file, and exits 2 for a unit listed twice, a bad name, a bad --check or no units", async () => {
    const dir = await finishedStages("usage");
    const list = join(dir, "units.txt");
    await writeFile(list, `# the job\n${STAGES.join("\n")}\n\n`);
    assert.equal((await runCli(["units", dir, "--units-file", list, "--check", "hash"])).code, 0);
    for (const args of [["--units", "a,b,a"], ["--units", "a,../b"], ["--units", "a", "--check", "deep"], []]) {
      const result = await runCli(["units", dir, ...args]);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /^ckptguard: USAGE: /);
    }
  });

  it("exits 2 in one line for a --units-file that is missing, a directory, or endless (/dev/zero), reading at most 16 MiB of it", async () => {
    const dir = await finishedStages("units-file");
    for (const [file, why] of [[join(dir, "absent.txt"), /cannot read .*: ENOENT/], [dir, /cannot read .*: EISDIR/], ["/dev/zero", /holds more than 16777216 bytes/]] as const) {
      const result = await runCli(["units", dir, "--units-file", file], { timeoutMs: 20_000 });
      assert.equal(result.code, 2, `${file}: ${result.stderr}`);
      assert.match(result.stderr, /^ckptguard: USAGE: --units-file: .*\n$/);
      assert.match(result.stderr, why);
    }
  });

  it("does not count a marker whose relative output climbs out of the directory with ..", async () => {
    const dir = join(root, "climbs");
    await mkdir(join(dir, ".done"), { recursive: true });
    await writeFile(join(root, "outside.bin"), "hello");
    await writeFile(join(dir, ".done", "u.done"), JSON.stringify({ version: 1, unit: "u", outputs: [{ path: "../outside.bin", size: 5, sha256: SHA256_OF_HELLO }], time: "", worker: "w" }));
    const result = await runCli(["units", dir, "--units", "u", "--check", "hash", "--json"]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(JSON.parse(result.stdout).units[0].reason, "no valid completion marker");
  });
});
