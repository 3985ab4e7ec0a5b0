/** The multi-worker mode's hand-out rules, with the time passed in: no processes, no sleeps. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UnitScheduler } from "../../src/run/workers/scheduler.js";
import { substituteWorker, workerEnvironment } from "../../src/run/workers/launch-args.js";
import { resolveWorkerOptions } from "../../src/run/workers/options.js";

const options = { ordered: false, batch: 1, maxRetries: 2, backoffMs: 100, backoffMaxMs: 1_000 };

describe("UnitScheduler", () => {
  it("hands each free worker up to --batch pending units, in order, and skips units already done", () => {
    const s = new UnitScheduler(["a", "b", "c", "d", "e"], { ...options, batch: 2 }, ["b"]);
    assert.deepEqual(s.assign([0, 1, 2], 0), [{ worker: 0, units: ["a", "c"], attempt: 1 }, { worker: 1, units: ["d", "e"], attempt: 1 }]);
    assert.deepEqual(s.counts(), { total: 5, done: 1, pending: 0, running: 4, failed: 0 });
    assert.deepEqual(s.assign([2], 0), []);
  });

  it("retries a failed unit after the backoff, on another free worker, and never hands out a finished one", () => {
    const s = new UnitScheduler(["a", "b"], options);
    s.assign([0, 1], 0);
    s.finished("b");
    assert.equal(s.failed("a", 0, 1_000), "retry");
    assert.deepEqual(s.assign([0, 1], 1_050), [], "backoff: 100 ms after the first failure");
    assert.equal(s.nextReadyAt(1_050), 1_100);
    assert.deepEqual(s.assign([0, 1], 1_100), [{ worker: 1, units: ["a"], attempt: 2 }], "worker 0 failed it: worker 1 takes it");
    assert.equal(s.failed("a", 1, 2_000), "retry");
    assert.equal(s.retryDelay("a"), 200, "doubling per failure of the unit");
    assert.deepEqual(s.assign([1], 2_200), [{ worker: 1, units: ["a"], attempt: 3 }], "the only free worker takes it rather than idle");
    assert.equal(s.failed("a", 1, 3_000), "gave-up", "1 + --max-retries 2 attempts");
    assert.deepEqual(s.givenUp, ["a"]);
    assert.equal(s.stateOf("b"), "done");
    assert.equal(s.complete, false);
  });

  it("puts a unit whose launch was stopped on purpose back without counting an attempt", () => {
    const s = new UnitScheduler(["a"], options);
    s.assign([0], 0);
    s.release("a");
    assert.deepEqual(s.assign([0], 0), [{ worker: 0, units: ["a"], attempt: 1 }]);
  });

  it("runs ordered stages one at a time, each after the one before is done", () => {
    const s = new UnitScheduler(["s1", "s2", "s3"], { ...options, ordered: true }, ["s1"]);
    assert.deepEqual(s.assign([0, 1], 0), [{ worker: 0, units: ["s2"], attempt: 1 }]);
    assert.deepEqual(s.assign([1], 0), [], "s3 waits for s2");
    assert.equal(s.failed("s2", 0, 0), "retry");
    assert.deepEqual(s.assign([0, 1], 100), [{ worker: 1, units: ["s2"], attempt: 2 }]);
    s.finished("s2");
    assert.deepEqual(s.assign([0, 1], 100), [{ worker: 0, units: ["s3"], attempt: 1 }]);
    s.finished("s3");
    assert.equal(s.complete, true);
  });
});

describe("worker launch arguments", () => {
  it("replaces {worker} and {units} everywhere and sets CKPTGUARD_WORKER, CKPTGUARD_UNITS and CUDA_VISIBLE_DEVICES", () => {
    assert.deepEqual(substituteWorker(["--rank", "{worker}", "--shards={units}", "log-{worker}.txt"], 3, ["a", "b/c"]), ["--rank", "3", "--shards=a,b/c", "log-3.txt"]);
    const env = workerEnvironment({ PATH: "/bin", CKPTGUARD_RESUME: "x", CUDA_VISIBLE_DEVICES: "7" }, { worker: 1, units: ["a", "b"], dir: "/d", progressFile: "/d/p", gpu: "1" });
    assert.deepEqual([env.CKPTGUARD_WORKER, env.CKPTGUARD_UNITS, env.CKPTGUARD_DIR, env.CUDA_VISIBLE_DEVICES, env.CKPTGUARD_RESUME, env.PATH], ["1", "a,b", "/d", "1", undefined, "/bin"]);
    assert.equal(workerEnvironment({ CUDA_VISIBLE_DEVICES: "7" }, { worker: 0, units: ["a"], dir: "/d", progressFile: "/p", gpu: undefined }).CUDA_VISIBLE_DEVICES, "7", "not pinned: inherited");
  });
});

describe("resolveWorkerOptions", () => {
  it("refuses bad or repeated unit names, a missing unit list, --batch with --ordered and single-command options, as USAGE", async () => {
    const base = { dir: "/tmp/x", command: ["true"], workers: 2 };
    for (const options of [{ units: ["a", "../b"] }, { units: ["a", "a"] }, {}, { units: ["a"], batch: 2, ordered: true }, { units: ["a"], maxRestarts: 2 }, { units: ["a"], finalCheck: true }, { units: ["a"], workers: 0 }]) {
      await assert.rejects(resolveWorkerOptions({ ...base, ...options }), (error: any) => error.code === "USAGE", JSON.stringify(options));
    }
    const resolved = await resolveWorkerOptions({ ...base, units: ["a", "step_1/rank_0"] });
    assert.deepEqual([resolved.units, resolved.batch, resolved.maxRetries, resolved.unitCheck], [["a", "step_1/rank_0"], 1, 3, "verify"]);
  });
});
