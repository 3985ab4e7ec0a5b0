/**
 * `ckptguard run --workers` as real processes: a Python worker (test/run/fixtures/unit_worker.py,
 * marking units with the Python companion) that fails on purpose: exit 3, SIGKILL after
 * writing its output but before marking it, a hang past --unit-timeout (with SIGTERM ignored
 * too), every attempt; and workers orphaned by a supervisor killed with SIGKILL.
 *
 * "Produced exactly once in the final result" is checked through the worker's log: each unit
 * has exactly one "marked" line over every run (a unit whose marker was written is never done
 * again), a unit is produced again only after an attempt that died before marking it, and the
 * final outputs are byte-equal to a failure-free run's.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runCli, TORCH_PYTHON } from "../helpers/torch.js";
import { fixture, killGroupQuietly, readJsonIfPresent, scratchDir, startCli, stopAll, waitFor } from "../helpers/supervised.js";
import { isAlive } from "../../src/run/child.js";
import { readRunFacts, summarizeRun } from "../../src/server/run-view.js";

const FAST = ["--backoff", "50ms", "--heartbeat", "100ms", "--progress-interval", "100ms", "--kill-after", "300ms"];
const UNITS = ["u1", "u2", "u3", "u4", "u5", "u6"];

const scratch: string[] = [];
/** Worker pids a test left without a supervisor: killed (their groups) whatever the test's outcome. */
const strays: number[] = [];
after(async () => {
  await stopAll();
  for (const pid of strays) killGroupQuietly(pid);
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

interface Job {
  dir: string;
  log: string;
  tries: string;
}

async function newJob(name: string): Promise<Job> {
  const root = await scratchDir(name);
  scratch.push(root);
  const job = { dir: join(root, "run"), log: join(root, "worker.log"), tries: join(root, "tries") };
  await mkdir(job.tries, { recursive: true });
  return job;
}

const worker = (job: Job, ...extra: string[]): string[] => [
  TORCH_PYTHON, fixture("unit_worker.py"), "--worker", "{worker}", "--units", "{units}", "--log", job.log, "--tries", job.tries, ...extra,
];

async function logLines(job: Job): Promise<Array<{ what: string; unit: string; worker: string; envWorker: string; gpu: string }>> {
  const text = await readFile(job.log, "utf8").catch(() => "");
  return text.trim().split("\n").filter(Boolean).map((line) => {
    const m = /^(produced|marked) (\S+) worker=(\S+) env_worker=(\S+) pid=\d+ gpu=(\S+)$/.exec(line);
    assert.ok(m, line);
    return { what: m[1]!, unit: m[2]!, worker: m[3]!, envWorker: m[4]!, gpu: m[5]! };
  });
}

const count = (lines: Array<{ what: string; unit: string }>, what: string, unit: string): number => lines.filter((l) => l.what === what && l.unit === unit).length;

async function outputs(job: Job): Promise<Map<string, Buffer>> {
  const dir = join(job.dir, "out");
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) files.set(name, await readFile(join(dir, name)));
  return files;
}

const runLog = (job: Job): string => join(job.dir, ".ckptguard", "run.log");

/** The time of run.log's first `ckptguard:` line matching `pattern` (its first group is the line's ISO time), and where it is. */
function logged(log: string, pattern: RegExp): { at: number; index: number; match: RegExpExecArray } {
  const match = pattern.exec(log);
  assert.ok(match, `run.log has a line matching ${pattern}:\n${log}`);
  return { at: Date.parse(match[1]!), index: match.index, match };
}

/** Launch lines of run.log: which worker ran which units, at which attempt. */
async function launches(job: Job): Promise<Array<{ worker: number; units: string; attempt: number }>> {
  const log = await readFile(join(job.dir, ".ckptguard", "run.log"), "utf8");
  return [...log.matchAll(/worker (\d+)(?: \(GPU \S+\))?: starting pid \d+ on (\S+?)(?: \(attempt (\d+) of \d+\))?: /g)]
    .map((m) => ({ worker: Number(m[1]), units: m[2]!, attempt: Number(m[3] ?? 1) }));
}

let reference: Map<string, Buffer> | undefined;

describe("ckptguard run --workers", () => {
  it("runs every unit once over pinned workers, reports each worker, and a second supervisor redoes nothing", async () => {
    const job = await newJob("workers-clean");
    const result = await runCli(["run", "--dir", job.dir, "--workers", "2", "--units", UNITS.join(","), "--batch", "2", "--gpus", "0,1", ...FAST, "--", ...worker(job)]);
    assert.equal(result.code, 0, result.stderr);
    const lines = await logLines(job);
    for (const unit of UNITS) assert.deepEqual([count(lines, "produced", unit), count(lines, "marked", unit)], [1, 1], unit);
    for (const line of lines) {
      assert.equal(line.gpu, line.worker, "worker i sees CUDA_VISIBLE_DEVICES=i (--gpus 0,1)");
      assert.equal(line.envWorker, line.worker, "CKPTGUARD_WORKER is {worker}");
    }
    assert.ok((await launches(job)).every((l) => l.units.split(",").length <= 2), "--batch 2");
    reference = await outputs(job);
    assert.equal(reference.size, UNITS.length);

    const progress = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
    assert.equal(progress.status, "completed");
    assert.deepEqual(progress.units, { total: 6, done: 6, pending: 0, running: 0, failed: 0 });
    assert.deepEqual(progress.workers.map((w: any) => [w.worker, w.status, w.gpu, w.failures]), [[0, "done", "0", 0], [1, "done", "1", 0]]);
    assert.equal(progress.workers.reduce((n: number, w: any) => n + w.launches, 0), 3, "6 units in batches of 2");
    for (const w of progress.workers) assert.ok(w.pid > 0 && w.attempts === 1 && typeof w.started === "string" && w.units.length > 0);

    const status = await runCli(["status", job.dir, "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const json = JSON.parse(status.stdout);
    assert.deepEqual(json.units, progress.units);
    assert.deepEqual(json.workers.map((w: any) => [w.worker, w.status, w.alive]), [[0, "done", false], [1, "done", false]]);
    const summary = await summarizeRun({ id: "0123456789ab", dir: job.dir, stateDir: join(job.dir, ".ckptguard"), name: "clean" }, await readRunFacts({ id: "0123456789ab", dir: job.dir, stateDir: join(job.dir, ".ckptguard"), name: "clean" }));
    assert.deepEqual(summary.units, progress.units, "the dashboard's summary carries the units");
    assert.deepEqual(summary.workers?.map((w) => w.worker), [0, 1], "and the worker table's rows");
    const human = await runCli(["status", job.dir]);
    assert.match(human.stdout, /units +6\/6 done/);
    assert.match(human.stdout, /worker 1 +done GPU 1/);

    const again = await runCli(["run", "--dir", job.dir, "--workers", "2", "--units", UNITS.join(","), ...FAST, "--", ...worker(job)]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Progress: 6\/6 units complete/);
    assert.deepEqual(await logLines(job), lines, "nothing launched, nothing redone");
  });

  it("retries units whose worker exited 3, was SIGKILLed before marking, or hung past --unit-timeout; each is marked once and the outputs equal a clean run's", async () => {
    const job = await newJob("workers-failing");
    const result = await runCli(["run", "--dir", job.dir, "--workers", "2", "--units", UNITS.join(","), "--unit-timeout", "800ms", ...FAST, "--",
      ...worker(job, "--fail", "u2=exit", "--fail", "u3=kill", "--fail", "u4=hang")]);
    assert.equal(result.code, 0, result.stderr);
    const lines = await logLines(job);
    for (const unit of UNITS) assert.equal(count(lines, "marked", unit), 1, `${unit} marked exactly once`);
    assert.equal(count(lines, "produced", "u3"), 2, "u3's first output was never marked: produced again");
    for (const unit of ["u1", "u2", "u4", "u5", "u6"]) assert.equal(count(lines, "produced", unit), 1, unit);
    for (const unit of UNITS) {
      const marked = lines.findIndex((l) => l.what === "marked" && l.unit === unit);
      assert.ok(!lines.slice(marked + 1).some((l) => l.unit === unit), `${unit}: nothing after its marker`);
    }
    assert.ok(reference, "the clean run ran first");
    assert.deepEqual(await outputs(job), reference, "byte-equal to the failure-free run");

    assert.match(result.stderr, /pid \d+ exited with code 3/);
    assert.match(result.stderr, /pid \d+ killed by SIGKILL/);
    assert.match(result.stderr, /unit u4 running for [\d.]+m?s, over --unit-timeout 800ms: sending SIGTERM/);
    assert.match(result.stderr, /killed by SIGTERM after --unit-timeout 800ms/);
    const retried = (await launches(job)).filter((l) => l.attempt === 2).map((l) => l.units).sort();
    assert.deepEqual(retried, ["u2", "u3", "u4"]);
    const progress = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
    assert.equal(progress.restarts, 3);
    assert.deepEqual(progress.units, { total: 6, done: 6, pending: 0, running: 0, failed: 0 });
    assert.equal(progress.workers.reduce((n: number, w: any) => n + w.failures, 0), 3);
    assert.deepEqual(progress.workers.map((w: any) => w.status), ["done", "done"], "every unit done: no slot left failed");
  });

  it("fails with UNIT_FAILED (exit 1) once a unit has failed 1 + --max-retries times, keeping the units that finished", async () => {
    const job = await newJob("workers-always");
    const result = await runCli(["run", "--dir", job.dir, "--workers", "2", "--units", "a,b,c", "--max-retries", "1", ...FAST, "--", ...worker(job, "--fail", "b=always")]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /UNIT_FAILED: b failed 2 times \(--max-retries 1\)/);
    assert.deepEqual((await launches(job)).filter((l) => l.units === "b").map((l) => l.attempt), [1, 2]);
    const progress = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
    assert.equal(progress.status, "failed");
    assert.equal(progress.outcome.code, "UNIT_FAILED");
    assert.deepEqual(progress.units, { total: 3, done: 2, pending: 0, running: 0, failed: 1 });
    const lines = await logLines(job);
    assert.deepEqual(["a", "c"].map((u) => count(lines, "marked", u)), [1, 1]);
    assert.equal((await runCli(["status", job.dir])).code, 1);
  });

  it("--ordered: after a middle stage's output is corrupted, redoes that stage and every later one, and only those", async () => {
    const job = await newJob("workers-ordered");
    const stages = ["s1", "s2", "s3", "s4"];
    const args = ["run", "--dir", job.dir, "--workers", "2", "--ordered", "--units", stages.join(","), ...FAST, "--", ...worker(job, "--chain", stages.join(","))];
    const first = await runCli([...args, "--fail", "s3=exit"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /Progress: 0\/4 stages complete, resuming from: s1/);
    const firstLines = await logLines(job);
    assert.deepEqual(firstLines.filter((l) => l.what === "marked").map((l) => l.unit), stages, "in order, s3 retried before s4");
    const clean = await outputs(job);

    const s2 = join(job.dir, "out", "s2.out");
    const bytes = await readFile(s2);
    bytes[10] = bytes[10]! ^ 0xff; // same size: only the SHA-256 sees it
    await writeFile(s2, bytes);

    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /Progress: 1\/4 stages complete, resuming from: s2/);
    const redone = (await logLines(job)).slice(firstLines.length);
    assert.deepEqual(redone.filter((l) => l.what === "marked").map((l) => l.unit), ["s2", "s3", "s4"]);
    assert.equal(redone.filter((l) => l.unit === "s1").length, 0, "s1 still checks out: not redone");
    assert.deepEqual(await outputs(job), clean);
  });

  it("SIGINT stops every worker, leaving their units pending; the next supervisor finishes without redoing a marked unit", async () => {
    const job = await newJob("workers-stop");
    const args = ["run", "--dir", job.dir, "--workers", "2", "--units", UNITS.join(","), ...FAST, "--", ...worker(job, "--sleep", "0.4")];
    const cli = startCli(args);
    await waitFor("a marked unit", async () => (await logLines(job)).some((l) => l.what === "marked"));
    const progress = await waitFor("two running workers", async () => {
      const p = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
      return p?.workers?.filter((w: any) => w.status === "running").length === 2 ? p : undefined;
    });
    cli.child.kill("SIGINT");
    const stopped = await cli.exited;
    assert.equal(stopped.code, 1, stopped.stderr);
    assert.match(stopped.stderr, /SIGINT: passing it to 2 running workers/);
    assert.match(stopped.stderr, /RUN_STOPPED/);
    for (const w of progress.workers) assert.equal(isAlive(w.pid), false, `worker ${w.worker} (pid ${w.pid}) is gone`);
    const before = await logLines(job);
    assert.ok(before.filter((l) => l.what === "marked").length < UNITS.length, "stopped midway");

    const resumed = await runCli(args);
    assert.equal(resumed.code, 0, resumed.stderr);
    const lines = await logLines(job);
    for (const unit of UNITS) assert.equal(count(lines, "marked", unit), 1, `${unit} marked exactly once`);
    assert.deepEqual(await outputs(job), reference);
  });

  it("after its supervisor is SIGKILLed, the next supervisor stops the orphaned workers, redoes no marked unit and finishes each unit once", async () => {
    const job = await newJob("workers-orphans");
    const args = ["run", "--dir", job.dir, "--workers", "2", "--units", UNITS.join(","), ...FAST, "--", ...worker(job, "--fail", "u3=hang", "--fail", "u4=hang")];
    const first = startCli(args);
    // u1 and u2 are marked, then each slot hangs (first attempt only) on u3 and u4: two live workers.
    const progress = await waitFor("both workers hanging on u3 and u4", async () => {
      const log = await readFile(runLog(job), "utf8").catch(() => "");
      if (!log.includes("hanging on u3") || !log.includes("hanging on u4")) return undefined;
      const p = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
      const running = (p?.workers ?? []).filter((w: any) => w.status === "running").map((w: any) => w.units.join(",")).sort();
      return running.join(" ") === "u3 u4" ? p : undefined;
    });
    const orphans: Array<{ worker: number; pid: number }> = progress.workers.map((w: any) => ({ worker: w.worker, pid: w.pid }));
    strays.push(...orphans.map((o) => o.pid));
    process.kill(first.pid, "SIGKILL");
    await first.exited;
    for (const { pid } of orphans) assert.equal(isAlive(pid), true, `worker pid ${pid} outlives its supervisor`);
    const before = await logLines(job);
    assert.deepEqual(before.filter((l) => l.what === "marked").map((l) => l.unit).sort(), ["u1", "u2"]);

    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    for (const { worker: w, pid } of orphans) {
      assert.match(second.stderr, new RegExp(`stopped worker ${w} \\(pid ${pid}\\), left running by a supervisor that died`));
      assert.equal(isAlive(pid), false, `the orphaned worker pid ${pid} is gone`);
    }
    assert.match(second.stderr, /Progress: 2\/6 units complete, 4 to do/);
    const log = await readFile(runLog(job), "utf8");
    for (const { pid } of orphans) assert.match(log, new RegExp(`stopped worker \\d \\(pid ${pid}\\)`), "run.log records the orphans it stopped");
    assert.doesNotMatch(log.slice(log.lastIndexOf("supervising 2 workers")), /starting pid \d+ on u[12][,:]/, "u1 and u2 were marked: not handed out again");

    const lines = await logLines(job);
    for (const unit of UNITS) assert.deepEqual([count(lines, "produced", unit), count(lines, "marked", unit)], [1, 1], `${unit} produced and marked once over both supervisors`);
    assert.ok(reference, "the clean run ran first");
    assert.deepEqual(await outputs(job), reference, "byte-equal to the failure-free run");
    const final = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
    assert.equal(final.status, "completed");
    assert.deepEqual(final.units, { total: 6, done: 6, pending: 0, running: 0, failed: 0 });
    for (const w of final.workers) assert.equal(isAlive(w.pid), false, `worker ${w.worker} (pid ${w.pid}) of the second supervisor is gone`);
  });

  it("--unit-timeout: a worker that ignores SIGTERM is SIGKILLed --kill-after later, its unit retried, and the run exits 0", async () => {
    const job = await newJob("workers-stubborn");
    const startedAt = Date.now();
    const result = await runCli(["run", "--dir", job.dir, "--workers", "2", "--units", "a,b,c", "--unit-timeout", "1500ms", ...FAST, "--", ...worker(job, "--fail", "b=stubborn")]);
    const elapsed = Date.now() - startedAt;
    assert.equal(result.code, 0, result.stderr);

    const log = await readFile(runLog(job), "utf8");
    const ignoring = log.indexOf("ignoring SIGTERM, hanging on b");
    const term = logged(log, /^\[(\S+)\] ckptguard: worker (\d): unit b running for [\d.]+s, over --unit-timeout 1\.5s: sending SIGTERM to pid (\d+)$/m);
    assert.ok(ignoring >= 0 && ignoring < term.index, "the SIGTERM reached a worker already ignoring it");
    const [, , slot, pid] = term.match;
    const killed = logged(log, new RegExp(`^\\[(\\S+)\\] ckptguard: worker ${slot}: still running 300ms after SIGTERM: killed$`, "m"));
    const exited = logged(log, new RegExp(`^\\[(\\S+)\\] ckptguard: worker ${slot}: pid ${pid} killed by SIGKILL after --unit-timeout 1\\.5s$`, "m"));
    assert.ok(killed.index > term.index && exited.index > killed.index);
    const gap = killed.at - term.at;
    assert.ok(gap >= 290 && gap < 1_300, `SIGKILL ${gap} ms after SIGTERM (--kill-after 300ms)`);
    assert.ok(elapsed >= 1_800 && elapsed < 15_000, `the run took ${elapsed} ms (1.5s timeout + 300ms kill-after + a retry)`);
    assert.equal(isAlive(Number(pid)), false);

    assert.deepEqual((await launches(job)).filter((l) => l.units === "b").map((l) => l.attempt), [1, 2], "b retried once");
    const lines = await logLines(job);
    for (const unit of ["a", "b", "c"]) assert.deepEqual([count(lines, "produced", unit), count(lines, "marked", unit)], [1, 1], unit);
    const progress = await readJsonIfPresent(join(job.dir, ".ckptguard", "progress.json"));
    assert.equal(progress.status, "completed");
    assert.equal(progress.restarts, 1);
    assert.deepEqual(progress.units, { total: 3, done: 3, pending: 0, running: 0, failed: 0 });
    assert.equal(progress.workers.reduce((n: number, w: any) => n + w.failures, 0), 1);
  });

  it("refuses worker flags without --workers as a usage error", async () => {
    const job = await newJob("workers-usage");
    const result = await runCli(["run", "--dir", job.dir, "--units", "a", "--", TORCH_PYTHON, "-c", "pass"]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--units: only with --workers N/);
  });

  it("runs a program whose path holds {worker}, and refuses one that a slot lacks before starting any", async () => {
    const job = await newJob("workers-program-path");
    for (const slot of [0, 1]) {
      const script = join(job.dir, "..", `slot_${slot}.sh`);
      await writeFile(script, `#!/bin/sh\nexec "${TORCH_PYTHON}" "${fixture("unit_worker.py")}" "$@"\n`, { mode: 0o755 });
    }
    const command = [join(job.dir, "..", "slot_{worker}.sh"), ...worker(job).slice(2)];
    const ran = await runCli(["run", "--dir", job.dir, "--workers", "2", "--units", "a,b,c", "--unit-check", "size", ...FAST, "--", ...command]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stderr, /worker 1: starting pid \d+ on b: \S+slot_1\.sh /);
    const third = await runCli(["run", "--dir", job.dir, "--workers", "3", "--units", "a", "--fresh", ...FAST, "--", ...command]);
    assert.equal(third.code, 1, third.stderr);
    assert.match(third.stderr, /^ckptguard: \S+slot_2\.sh: COMMAND_NOT_FOUND: /m);
    assert.doesNotMatch(third.stderr, /starting pid/);
  });

  it("exits 1 at once with FUTURE_VERSION, not hanging on its timers, when a unit's marker is of a newer protocol", async () => {
    const job = await newJob("workers-future-marker");
    await mkdir(join(job.dir, ".done"), { recursive: true });
    await writeFile(join(job.dir, ".done", "a.done"), '{"version":2,"unit":"a","outputs":[]}');
    const result = await runCli(["run", "--dir", job.dir, "--workers", "1", "--units", "a", ...FAST, "--", ...worker(job)], { timeoutMs: 15_000 });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /FUTURE_VERSION: completion marker version 2 is newer/);
    assert.doesNotMatch(result.stderr, /starting pid/);
  });

  it("refuses an empty --gpus, and --gpus with --pin-gpus, as usage errors", async () => {
    const job = await newJob("workers-gpus");
    for (const gpus of [["--gpus", ""], ["--gpus", ","], ["--gpus", "0", "--pin-gpus"]]) {
      const result = await runCli(["run", "--dir", job.dir, "--workers", "1", "--units", "a", ...gpus, "--", ...worker(job)]);
      assert.equal(result.code, 2, `${gpus.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, /^ckptguard: USAGE: --gpus/);
      assert.equal(result.stderr.split("\n").filter(Boolean).length, 1, result.stderr);
    }
  });
});
