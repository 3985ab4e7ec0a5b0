/**
 * Ordering, scanning and metrics files without torch: synthetic entries and plain files.
 */
import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";

import { defaultMetric, defaultMode, rankByMetric } from "../../src/catalog/best.js";
import type { CatalogEntry } from "../../src/catalog/entry.js";
import { applyMetricsRows, readMetricsFile } from "../../src/catalog/metrics-file.js";
import { nameNumbers, orderEntries } from "../../src/catalog/order.js";
import { scanCheckpoints } from "../../src/catalog/scan.js";
import { isAliasName } from "../../src/catalog/sequence.js";
import { TEST_TMP } from "../helpers/torch.js";

function entry(path: string, fields: Partial<CatalogEntry> = {}): CatalogEntry {
  return { path, kind: "file", size: 1, mtimeMs: 0, verdict: "valid", problems: [], metrics: {}, inProgress: false, check: "structure", ...fields };
}

const names = (entries: readonly CatalogEntry[]) => entries.map((e) => basename(e.path));

describe("orderEntries", () => {
  it("orders by the step the content records, not by name or mtime", () => {
    const ordered = orderEntries([
      entry("/r/b.pt", { step: 10, mtimeMs: 1 }),
      entry("/r/a.pt", { step: 30, mtimeMs: 0 }),
      entry("/r/c.pt", { step: 20, mtimeMs: 2 }),
    ], "/r");
    assert.deepEqual(names(ordered), ["b.pt", "c.pt", "a.pt"]);
  });

  it("falls back to the epoch when there is no step", () => {
    assert.deepEqual(names(orderEntries([entry("/r/x.pt", { epoch: 2 }), entry("/r/y.pt", { epoch: 1 })], "/r")), ["y.pt", "x.pt"]);
  });

  it("orders by the numbers in names numerically (ckpt_10 after ckpt_9) when content records nothing", () => {
    const ordered = orderEntries([entry("/r/ckpt_10.pt"), entry("/r/ckpt_9.pt"), entry("/r/ckpt_100.pt")], "/r");
    assert.deepEqual(names(ordered), ["ckpt_9.pt", "ckpt_10.pt", "ckpt_100.pt"]);
  });

  it("places a truncated file (no content) by its name among the others", () => {
    const ordered = orderEntries([entry("/r/ckpt_epoch_0003.pt"), entry("/r/ckpt_epoch_0002.pt", { epoch: 2 }), entry("/r/ckpt_epoch_0001.pt", { epoch: 1 })], "/r");
    assert.deepEqual(names(ordered), ["ckpt_epoch_0001.pt", "ckpt_epoch_0002.pt", "ckpt_epoch_0003.pt"]);
  });

  it("falls back to mtime when neither content nor names order them", () => {
    assert.deepEqual(names(orderEntries([entry("/r/new.pt", { mtimeMs: 5 }), entry("/r/old.pt", { mtimeMs: 1 })], "/r")), ["old.pt", "new.pt"]);
  });

  it("ignores the digits of the scanned directory itself", () => {
    assert.deepEqual(nameNumbers("/runs/run2024/ckpt_7.pt", "/runs/run2024"), [7]);
  });
});

describe("best metric", () => {
  it("minimises losses and maximises accuracies by default", () => {
    assert.equal(defaultMode("val_loss"), "min");
    assert.equal(defaultMode("eval_accuracy"), "max");
    assert.equal(defaultMode("perplexity"), "min");
  });

  it("ranks by a dotted metric's last part and never ranks a NaN first", () => {
    const entries = [
      entry("/r/1.pt", { metrics: { "metrics.val_loss": 0.5 } }),
      entry("/r/2.pt", { metrics: { "metrics.val_loss": Number.NaN } }),
      entry("/r/3.pt", { metrics: { "metrics.val_loss": 0.4 } }),
    ];
    assert.equal(defaultMetric(entries), "val_loss");
    assert.deepEqual(names(rankByMetric(entries, "val_loss", "min")), ["3.pt", "1.pt"]);
  });

  it("treats best.pt, last.ckpt and model_final.pth as aliases, not series members", () => {
    assert.deepEqual(["best.pt", "last.ckpt", "model_final.pth", "ckpt_epoch_0003.pt", "bestiary_7.pt"].map(isAliasName), [true, true, true, false, false]);
  });
});

describe("scanCheckpoints", () => {
  let dir = "";
  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "scan-"));
    await writeFile(join(dir, "ckpt_1.pt"), "x");
    await writeFile(join(dir, ".ckpt_2.pt.ab12.tmp"), "x");
    await writeFile(join(dir, "model.pt.partial"), "x");
    await writeFile(join(dir, "notes.txt"), "not a checkpoint");
    await mkdir(join(dir, "sub", "checkpoint-20"), { recursive: true });
    await writeFile(join(dir, "sub", "checkpoint-20", "pytorch_model.bin"), "x");
    await writeFile(join(dir, "sub", "checkpoint-20", "optimizer.pt"), "xy");
    await mkdir(join(dir, ".ckptguard"));
    await writeFile(join(dir, ".ckptguard", "state.pt"), "x");
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("lists files recursively, an HF checkpoint-N/ directory as one unit, and skips .ckptguard/", async () => {
    const found = await scanCheckpoints(dir);
    const rel = found.map((c) => [c.path.slice(dir.length + 1), c.kind, c.inProgress]);
    assert.deepEqual(rel.sort(), [
      [".ckpt_2.pt.ab12.tmp", "file", true],
      ["ckpt_1.pt", "file", false],
      ["model.pt.partial", "file", true],
      ["sub/checkpoint-20", "hf-trainer-dir", false],
    ]);
    assert.equal(found.find((c) => c.kind === "hf-trainer-dir")?.size, 3);
  });

  it("marks a file whose size changes between the two looks as in progress", async () => {
    const growing = join(dir, "growing.pt");
    await writeFile(growing, "x");
    const timer = setInterval(() => void appendFile(growing, "more"), 10);
    try {
      const found = await scanCheckpoints(dir, { settleMs: 150 });
      const candidate = found.find((c) => c.path === growing);
      assert.equal(candidate?.inProgress, true);
      assert.match(candidate?.inProgressReason ?? "", /still being written/);
    } finally {
      clearInterval(timer);
      await rm(growing);
    }
  });

  it("reports NOT_A_DIRECTORY for a file and NOT_FOUND for a missing path", async () => {
    await assert.rejects(scanCheckpoints(join(dir, "ckpt_1.pt")), { code: "NOT_A_DIRECTORY" });
    await assert.rejects(scanCheckpoints(join(dir, "absent")), { code: "NOT_FOUND" });
  });
});

describe("metrics files", () => {
  let dir = "";
  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "metrics-"));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("reads JSON lines by epoch, CSV by step and a JSON object by file name; content wins", async () => {
    await writeFile(join(dir, "m.jsonl"), '{"epoch": 1, "val_loss": 0.9}\n{"epoch": 2, "val_loss": 0.7}\n');
    await writeFile(join(dir, "m.csv"), "step,val_acc\n100,0.5\n200,0.75\n");
    await writeFile(join(dir, "m.json"), '{"ckpt_b.pt": {"bleu": 31.5}}');
    const a = entry(join(dir, "ckpt_a.pt"), { epoch: 2, step: 200, metrics: { val_loss: 0.1 } });
    const b = entry(join(dir, "ckpt_b.pt"), { epoch: 1, step: 100 });
    applyMetricsRows([a, b], await readMetricsFile(join(dir, "m.jsonl")), dir);
    applyMetricsRows([a, b], await readMetricsFile(join(dir, "m.csv")), dir);
    applyMetricsRows([a, b], await readMetricsFile(join(dir, "m.json")), dir);
    assert.deepEqual(a.metrics, { val_loss: 0.1, epoch: 2, val_acc: 0.75, step: 200 });
    assert.deepEqual(b.metrics, { val_loss: 0.9, epoch: 1, val_acc: 0.5, step: 100, bleu: 31.5 });
  });

  it("reports METRICS_FILE_INVALID for a file that is not JSON", async () => {
    await writeFile(join(dir, "bad.jsonl"), "{not json\n");
    await assert.rejects(readMetricsFile(join(dir, "bad.jsonl")), { code: "METRICS_FILE_INVALID" });
  });
});

// mtime fallback with real files: utimes keeps the test free of sleeps.
describe("scan + order with real mtimes", () => {
  let dir = "";
  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "mtime-"));
    for (const [name, seconds] of [["alpha.pt", 300], ["beta.pt", 100], ["gamma.pt", 200]] as const) {
      await writeFile(join(dir, name), "x");
      await utimes(join(dir, name), seconds, seconds);
    }
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("orders unnamed, unreadable files by mtime", async () => {
    const candidates = await scanCheckpoints(dir);
    const entries = candidates.map((c) => entry(c.path, { mtimeMs: c.mtimeMs }));
    assert.deepEqual(names(orderEntries(entries, dir)), ["beta.pt", "gamma.pt", "alpha.pt"]);
  });
});
