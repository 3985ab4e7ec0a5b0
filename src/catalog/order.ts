import { relative } from "node:path";
import type { CatalogEntry } from "./entry.js";

/**
 * Oldest-first order of a run's checkpoints: by the step, then the epoch, their content
 * records (the truth even when files were renamed or copied), then by the numbers in
 * their names (`ckpt_epoch_0009.pt`, `epoch=3-step=120.ckpt`), then by mtime.
 * Each key is compared only when both entries have it, so a checkpoint without a step
 * (a truncated file) still falls into place by its name.
 */
export function compareEntries(a: CatalogEntry, b: CatalogEntry, root = ""): number {
  return (
    compareDefined(a.step, b.step) ||
    compareDefined(a.epoch, b.epoch) ||
    compareByName(a, b, root)
  );
}

/** The order files were written in as far as names and mtimes tell, ignoring content. */
export function compareByName(a: Pick<CatalogEntry, "path" | "mtimeMs">, b: Pick<CatalogEntry, "path" | "mtimeMs">, root = ""): number {
  return compareNumberLists(nameNumbers(a.path, root), nameNumbers(b.path, root)) || a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path);
}

/** A sorted copy, oldest first. `root` is the scanned directory, whose own digits never count. */
export function orderEntries<T extends CatalogEntry>(entries: readonly T[], root = ""): T[] {
  return [...entries].sort((a, b) => compareEntries(a, b, root));
}

/** Every run of digits in the path below `root`, in order: `run2/ckpt_0010.pt` -> [2, 10]. */
export function nameNumbers(path: string, root = ""): number[] {
  const name = root === "" ? path : relative(root, path);
  return [...name.matchAll(/\d+/g)].map((m) => Number(m[0]));
}

function compareDefined(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined ? 0 : a - b;
}

/** Lexicographic on the shared prefix; an entry with no numbers is not ordered by this key. */
function compareNumberLists(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
