import { relative } from "node:path";
import type { CatalogEntry } from "../catalog/entry.js";
import { formatBytes, type Palette } from "./style.js";

/** One catalog entry as `ls --json` and `check-run --json` print it (snake_case, like verify). */
export function entryJson(entry: CatalogEntry, marks: { latest?: string | undefined; best?: string | undefined } = {}) {
  return {
    path: entry.path,
    kind: entry.kind,
    size: entry.size,
    mtime: new Date(entry.mtimeMs).toISOString(),
    verdict: entry.verdict,
    check: entry.check,
    step: entry.step ?? null,
    epoch: entry.epoch ?? null,
    loss: entry.loss ?? null,
    metrics: entry.metrics,
    in_progress: entry.inProgress,
    latest: entry.path === marks.latest,
    best: entry.path === marks.best,
    problems: entry.problems,
  };
}

/** A table of entries, oldest first: step, epoch, loss, size, verdict, path, marks. */
export function renderEntryTable(entries: readonly CatalogEntry[], root: string, c: Palette, marks: { latest?: string | undefined; best?: string | undefined } = {}): string[] {
  const rows = entries.map((e) => [
    e.step === undefined ? "-" : String(e.step),
    e.epoch === undefined ? "-" : String(Number(e.epoch.toPrecision(6))),
    e.loss === undefined ? "-" : String(Number(e.loss.toPrecision(5))),
    formatBytes(e.size),
    e.inProgress ? "in-progress" : e.verdict,
    relative(root, e.path) || e.path,
    [e.path === marks.latest ? "latest" : "", e.path === marks.best ? "best" : ""].filter((m) => m !== "").join(","),
  ]);
  const header = ["step", "epoch", "loss", "size", "verdict", "path", ""];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[], paint?: (text: string) => string) => {
    const text = cells.map((cell, i) => (i < 4 ? cell.padStart(widths[i]!) : i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd();
    return paint ? paint(text) : text;
  };
  return [
    line(header, c.dim),
    ...rows.map((r, i) => {
      const e = entries[i]!;
      return line(r, e.verdict === "valid" && !e.inProgress ? undefined : e.verdict === "unsafe" ? c.red : c.yellow);
    }),
  ];
}

/** The first error of an entry as `CODE: message`. */
export function firstProblem(entry: CatalogEntry): string {
  const first = entry.problems.find((p) => p.severity === "error") ?? entry.problems[0];
  return first ? `${first.code}: ${first.message}` : entry.verdict;
}
