import { basename } from "node:path";
import { readCatalogEntry, type CatalogEntry } from "../catalog/entry.js";
import { compareEntries } from "../catalog/order.js";
import { qualificationRules } from "../catalog/rules.js";
import { scanCheckpoints } from "../catalog/scan.js";

/**
 * `--final-check`: after the command exits 0, the run is done only if its last checkpoint
 * is there, valid (every byte CRC-checked), complete as a training checkpoint, newer than
 * every other checkpoint in the directory (by content, then name, then mtime), and — when
 * the total is known — at the last epoch or step.
 */
export interface FinalCheck {
  final?: CatalogEntry;
  /** One sentence per failed condition; empty when the run is complete. */
  failures: string[];
}

export async function finalCheck(dir: string, totals: { epochs?: number; steps?: number }): Promise<FinalCheck> {
  const candidates = (await scanCheckpoints(dir)).filter((c) => !c.inProgress);
  if (candidates.length === 0) return { failures: [`no checkpoint in ${dir}: the command exited 0 without saving`] };
  const rules = qualificationRules({});
  // Structure is enough to order the others; the final one gets the full check.
  const entries: CatalogEntry[] = [];
  for (const candidate of candidates) entries.push((await readCatalogEntry(candidate, { check: "structure", ...rules })).entry);
  const newestIndex = entries.reduce((best, e, i) => (e.mtimeMs > entries[best]!.mtimeMs ? i : best), 0);
  const final = (await readCatalogEntry(candidates[newestIndex]!, { check: "full", ...rules })).entry;
  entries[newestIndex] = final;
  const name = basename(final.path);
  const failures: string[] = [];
  if (final.verdict !== "valid") {
    const reasons = final.problems.filter((p) => p.severity === "error").map((p) => `${p.code}: ${p.message}`).join("; ");
    failures.push(`final checkpoint ${name} is ${final.verdict} (${reasons})`);
  }
  const newer = entries.filter((e) => e !== final && compareEntries(e, final, dir) > 0);
  if (newer.length > 0) failures.push(`final checkpoint ${name} is not the newest: ${newer.map((e) => basename(e.path)).join(", ")} ${newer.length === 1 ? "is" : "are"} further along`);
  if (totals.epochs !== undefined && final.epoch !== undefined && final.epoch < totals.epochs) failures.push(`final checkpoint ${name} is at epoch ${final.epoch} of ${totals.epochs}`);
  if (totals.steps !== undefined && final.step !== undefined && final.step < totals.steps) failures.push(`final checkpoint ${name} is at step ${final.step} of ${totals.steps}`);
  return { final, failures };
}
