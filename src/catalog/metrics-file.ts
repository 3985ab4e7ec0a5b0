import { readFile, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { CkptError } from "../errors.js";
import { fsError } from "../formats/open.js";
import type { CatalogEntry } from "./entry.js";

/**
 * Metrics a training script logged beside its checkpoints, for runs that keep
 * `val_loss` out of the checkpoint itself. A row names its checkpoint by file name
 * (`checkpoint`/`file`/`path`), by `step`/`global_step`, or by `epoch`; its other
 * numbers are metrics. Accepted: JSON lines, a JSON array of rows, a JSON object
 * keyed by checkpoint name, or CSV with a header line.
 */

export type MetricsRow = Record<string, number | string>;

/** Read automatically from the scanned directory when present (first found wins). */
export const METRICS_FILE_NAMES = ["metrics.jsonl", "metrics.json", "metrics.csv"] as const;

/** Logs beyond this are not a metrics file. */
const MAX_METRICS_FILE_BYTES = 64 << 20;
const NAME_KEYS = ["checkpoint", "file", "path", "ckpt"];
const STEP_KEYS = ["step", "global_step", "iter_num"];

export async function readMetricsFile(path: string): Promise<MetricsRow[]> {
  let text: string;
  try {
    const { size } = await stat(path);
    if (size > MAX_METRICS_FILE_BYTES) throw new CkptError("METRICS_FILE_INVALID", `metrics file is ${size} bytes, over the ${MAX_METRICS_FILE_BYTES}-byte limit`, { file: path });
    text = await readFile(path, "utf8");
  } catch (error) {
    throw error instanceof CkptError ? error : fsError(error, path);
  }
  try {
    return path.endsWith(".csv") ? parseCsv(text) : parseJsonRows(text);
  } catch (error) {
    if (error instanceof CkptError) throw error;
    throw new CkptError("METRICS_FILE_INVALID", `cannot parse metrics file: ${(error as Error).message}`, { file: path }, { cause: error });
  }
}

/** The metrics file named in `dir` by METRICS_FILE_NAMES, if any. */
export async function findMetricsFile(dir: string): Promise<string | undefined> {
  for (const name of METRICS_FILE_NAMES) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) return join(dir, name);
  }
  return undefined;
}

/** Adds each row's numbers to the entries it names; numbers the checkpoint itself records win. */
export function applyMetricsRows(entries: readonly CatalogEntry[], rows: readonly MetricsRow[], root: string): void {
  for (const entry of entries) {
    const rel = relative(root, entry.path);
    const row = rows.find((r) => NAME_KEYS.some((k) => r[k] === rel || r[k] === basename(entry.path) || r[k] === entry.path))
      ?? (entry.step !== undefined ? rows.find((r) => STEP_KEYS.some((k) => r[k] === entry.step)) : undefined)
      ?? (entry.epoch !== undefined ? rows.find((r) => r.epoch === entry.epoch && STEP_KEYS.every((k) => r[k] === undefined)) : undefined);
    if (!row) continue;
    for (const [key, value] of Object.entries(row)) {
      if (typeof value === "number" && !(key in entry.metrics)) entry.metrics[key] = value;
    }
  }
}

function parseJsonRows(text: string): MetricsRow[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  if (trimmed.startsWith("[") || (trimmed.startsWith("{") && !trimmed.includes("\n{"))) {
    const parsed: unknown = JSON.parse(trimmed);
    if (Array.isArray(parsed)) return parsed.filter(isObject).map(toRow);
    if (isObject(parsed)) return Object.entries(parsed).filter(([, v]) => isObject(v)).map(([name, v]) => ({ ...toRow(v as Record<string, unknown>), checkpoint: name }));
    throw new Error("expected a JSON array or object");
  }
  return trimmed.split("\n").filter((line) => line.trim() !== "").map((line) => {
    const parsed: unknown = JSON.parse(line);
    if (!isObject(parsed)) throw new Error(`line is not a JSON object: ${line.slice(0, 80)}`);
    return toRow(parsed);
  });
}

function parseCsv(text: string): MetricsRow[] {
  const [header, ...lines] = text.split(/\r?\n/).filter((line) => line.trim() !== "");
  if (header === undefined) return [];
  const columns = header.split(",").map((c) => c.trim());
  return lines.map((line) => {
    const cells = line.split(",");
    const row: MetricsRow = {};
    columns.forEach((column, i) => {
      const cell = (cells[i] ?? "").trim();
      if (cell === "") return;
      const n = Number(cell);
      row[column] = Number.isNaN(n) && cell.toLowerCase() !== "nan" ? cell : n;
    });
    return row;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toRow(value: Record<string, unknown>): MetricsRow {
  const row: MetricsRow = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === "number" || typeof v === "string") row[k] = v;
  return row;
}
