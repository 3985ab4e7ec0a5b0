/** --keep-last / --keep-best over a manifest: what may be deleted, and what never is. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CatalogEntry } from "../../src/catalog/entry.js";
import { emptyManifest, recordCheckpoint, refreshSelections, type Manifest } from "../../src/manifest/manifest.js";
import { selectForDeletion } from "../../src/run/retention.js";

function manifestOf(rows: Array<[epoch: number, verdict: CatalogEntry["verdict"], valLoss: number]>): Manifest {
  const manifest = emptyManifest("/run");
  for (const [epoch, verdict, valLoss] of rows) {
    const entry: CatalogEntry = {
      path: `/run/ckpt_${epoch}.pt`, kind: "file", size: 10, mtimeMs: epoch * 1000, verdict, problems: [], epoch,
      metrics: { val_loss: valLoss }, inProgress: false, check: "full",
    };
    recordCheckpoint(manifest, entry, epoch * 1000);
  }
  refreshSelections(manifest, { name: "val_loss", mode: "min" });
  return manifest;
}

const names = (paths: string[]): string[] => paths.map((p) => p.replace("/run/", ""));

describe("selectForDeletion", () => {
  it("deletes nothing without --keep-last or --keep-best", () => {
    assert.deepEqual(selectForDeletion(manifestOf([[1, "valid", 1], [2, "valid", 1], [3, "valid", 1]]), {}), []);
  });

  it("--keep-last 2 keeps the two newest valid and the best, deletes the other valid ones", () => {
    const m = manifestOf([[1, "valid", 0.9], [2, "valid", 0.2], [3, "valid", 0.8], [4, "valid", 0.7], [5, "valid", 0.6]]);
    assert.deepEqual(names(selectForDeletion(m, { keepLast: 2 })), ["ckpt_1.pt", "ckpt_3.pt"]);
  });

  it("never deletes an invalid file (it is evidence) and counts only valid ones as kept", () => {
    const m = manifestOf([[1, "valid", 0.6], [2, "valid", 0.8], [3, "corrupt", 0.1], [4, "valid", 0.7]]);
    assert.equal(m.best, "/run/ckpt_1.pt", "the corrupt file's 0.1 does not make it best");
    assert.deepEqual(names(selectForDeletion(m, { keepLast: 1 })), ["ckpt_2.pt"]);
  });

  it("--keep-best 2 --keep-last 1 keeps the two best and the newest", () => {
    const m = manifestOf([[1, "valid", 0.5], [2, "valid", 0.3], [3, "valid", 0.4], [4, "valid", 0.9], [5, "valid", 0.8]]);
    assert.deepEqual(names(selectForDeletion(m, { keepLast: 1, keepBest: 2 })), ["ckpt_1.pt", "ckpt_4.pt"]);
  });

  it("--keep-best alone still keeps the newest valid one", () => {
    const m = manifestOf([[1, "valid", 0.1], [2, "valid", 0.5], [3, "valid", 0.9]]);
    assert.deepEqual(names(selectForDeletion(m, { keepBest: 1 })), ["ckpt_2.pt"]);
  });

  it("with one valid checkpoint, deletes nothing", () => {
    assert.deepEqual(selectForDeletion(manifestOf([[1, "corrupt", 1], [2, "valid", 1]]), { keepLast: 1, keepBest: 0 }), []);
  });
});
