/** The supervisor's memory of a run, driven with an injected clock: no test here sleeps. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { emptyManifest, recordCheckpoint, refreshSelections } from "../../src/manifest/manifest.js";
import { resolveRunOptions } from "../../src/run/options.js";
import { estimateEta, nextSaveExpected } from "../../src/run/progress.js";
import { parseProgressLine } from "../../src/run/progress-feed.js";
import { RunTracker } from "../../src/run/run-tracker.js";
import type { CatalogEntry } from "../../src/catalog/entry.js";

const T0 = Date.parse("2025-01-01T00:00:00Z");
const MIN = 60_000;

function entry(name: string, epoch: number, mtimeMs: number, verdict: CatalogEntry["verdict"] = "valid", metrics: Record<string, number> = {}): CatalogEntry {
  return { path: `/run/${name}`, kind: "file", size: 100, mtimeMs, verdict, problems: [], epoch, metrics, inProgress: false, check: "full" };
}

function tracker(extra: Parameters<typeof resolveRunOptions>[0] extends infer O ? Partial<O> : never = {}): RunTracker {
  return new RunTracker(resolveRunOptions({ dir: "/run", command: ["train"], ...extra }), T0, 1234);
}

describe("save gap (--max-gap)", () => {
  it("warns once when no valid checkpoint arrived for longer than --max-gap since the start", () => {
    const t = tracker({ maxGapMs: 5 * MIN });
    assert.equal(t.checkSaveGap(T0 + 5 * MIN), undefined);
    const warning = t.checkSaveGap(T0 + 5 * MIN + 1);
    assert.equal(warning?.code, "SAVE_GAP");
    assert.equal(warning?.since, new Date(T0 + 5 * MIN).toISOString());
    assert.equal(t.checkSaveGap(T0 + 6 * MIN), undefined, "not repeated while it stands");
    assert.deepEqual(t.warnings.map((w) => w.code), ["SAVE_GAP"]);
  });

  it("counts from the last valid checkpoint, and a new one clears the warning", () => {
    const t = tracker({ maxGapMs: 5 * MIN });
    const manifest = emptyManifest("/run");
    t.childStarted(99, ["train"], T0);
    t.validCheckpoint(recordCheckpoint(manifest, entry("e1.pt", 1, T0 + 4 * MIN), T0 + 4 * MIN), T0 + 4 * MIN);
    assert.equal(t.checkSaveGap(T0 + 9 * MIN), undefined);
    assert.equal(t.checkSaveGap(T0 + 9 * MIN + 1)?.code, "SAVE_GAP");
    t.validCheckpoint(recordCheckpoint(manifest, entry("e2.pt", 2, T0 + 10 * MIN), T0 + 10 * MIN), T0 + 10 * MIN);
    assert.deepEqual(t.warnings, []);
  });

  it("never warns without --max-gap", () => {
    assert.equal(tracker().checkSaveGap(T0 + 1000 * MIN), undefined);
  });
});

describe("progress.json snapshot", () => {
  it("reports latest valid, best by the metric, the script's own position and the totals it reported", () => {
    const t = tracker();
    const manifest = emptyManifest("/run");
    t.childStarted(99, ["train", "--resume", "x"], T0);
    recordCheckpoint(manifest, entry("ckpt_1.pt", 1, T0 + MIN, "valid", { val_loss: 0.5 }), T0 + MIN);
    recordCheckpoint(manifest, entry("ckpt_2.pt", 2, T0 + 2 * MIN, "valid", { val_loss: 0.7 }), T0 + 2 * MIN);
    recordCheckpoint(manifest, entry("ckpt_3.pt", 3, T0 + 3 * MIN, "corrupt"), T0 + 3 * MIN);
    refreshSelections(manifest);
    t.progressLine(parseProgressLine('{"epoch": 2, "step": 200, "loss": 0.25, "total_epochs": 10}')!, T0 + 2 * MIN);
    const p = t.snapshot(manifest, T0 + 3 * MIN);
    assert.equal(p.latest_valid?.path, "/run/ckpt_2.pt");
    assert.equal(p.best?.path, "/run/ckpt_1.pt");
    assert.deepEqual(p.best?.metric, { name: "val_loss", value: 0.5 });
    assert.deepEqual([p.epoch, p.step, p.loss, p.total_epochs], [2, 200, 0.25, 10]);
    assert.equal(p.child_pid, 99);
    assert.deepEqual(p.child_command, ["train", "--resume", "x"]);
    assert.equal(p.last_save_at, new Date(T0 + 2 * MIN).toISOString());
    assert.equal(p.next_save_expected_at, new Date(T0 + 3 * MIN).toISOString());
  });
});

describe("estimates", () => {
  it("gives the ETA from the pace since the child started", () => {
    const samples = [{ at: T0, epoch: 2 }, { at: T0 + 2 * MIN, epoch: 4 }];
    assert.equal(estimateEta(samples, { epochs: 10 }, T0 + 2 * MIN), 6 * 60);
    assert.equal(estimateEta(samples, { epochs: 10 }, T0 + 3 * MIN), 5 * 60);
    assert.equal(estimateEta(samples, { epochs: 10 }, T0 + 9 * MIN), null, "stalled past the predicted end: unknown");
    assert.equal(estimateEta(samples, {}, T0), null, "no total, no ETA");
    assert.equal(estimateEta([{ at: T0, epoch: 2 }], { epochs: 10 }, T0), null, "one point is no pace");
    assert.equal(estimateEta([{ at: T0, epoch: 10 }], { epochs: 10 }, T0), 0);
  });

  it("expects the next save one median gap after the last", () => {
    assert.equal(nextSaveExpected([T0, T0 + 10, T0 + 20, T0 + 90]), T0 + 100);
    assert.equal(nextSaveExpected([T0]), null);
  });
});

describe("progress lines (CKPTGUARD_PROGRESS)", () => {
  it("reads step, epoch, loss and totals under their common names", () => {
    const line = parseProgressLine('{"global_step": 7, "epoch": 1, "train_loss": 2.5, "max_steps": 100, "lr": 0.001}');
    assert.deepEqual([line?.step, line?.epoch, line?.loss, line?.totalSteps], [7, 1, 2.5, 100]);
    assert.equal(line?.values.lr, 0.001);
  });

  it("skips lines that are not JSON objects (half a line from a killed writer)", () => {
    assert.equal(parseProgressLine('{"step": 1'), undefined);
    assert.equal(parseProgressLine("[1, 2]"), undefined);
  });
});
