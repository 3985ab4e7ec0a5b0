import { statSync } from "node:fs";
import { open, stat } from "node:fs/promises";

/**
 * Reads what a training script appends to `CKPTGUARD_PROGRESS`: one JSON object a line,
 * `{"step": 1200, "epoch": 3, "loss": 0.41, "total_epochs": 10, ...}`. Only the bytes added
 * since the last poll are read, and only whole lines; a line that is not a JSON object is
 * skipped (a script killed mid-write leaves half a line, which the next one completes).
 */

/** At most this much is read per poll, so a script that logs a flood cannot balloon us. */
const MAX_READ_BYTES = 1 << 20;

export interface ProgressLine {
  values: Record<string, unknown>;
  epoch?: number;
  step?: number;
  loss?: number;
  totalEpochs?: number;
  totalSteps?: number;
}

const TOTAL_EPOCH_KEYS = ["total_epochs", "epochs_total", "max_epochs", "num_epochs"];
const TOTAL_STEP_KEYS = ["total_steps", "max_steps", "steps_total", "num_steps"];

export class ProgressFeed {
  private offset = 0;
  private partial = "";

  constructor(readonly path: string) {}

  /** Starts reading at the current end (an earlier run's lines are history, not progress). */
  async skipExisting(): Promise<void> {
    const info = await stat(this.path).catch(() => undefined);
    this.offset = info?.size ?? 0;
  }

  /** Lines appended since the last poll, parsed. */
  async poll(): Promise<ProgressLine[]> {
    // Sync and without throwing: the file is usually absent, and a rejected stat every tick
    // costs an Error with its stack (the state directory is local, so the call is quick).
    const info = statSync(this.path, { throwIfNoEntry: false });
    if (info === undefined) return [];
    if (info.size < this.offset) {
      this.offset = 0; // truncated or replaced: start over
      this.partial = "";
    }
    if (info.size === this.offset) return [];
    const length = Math.min(info.size - this.offset, MAX_READ_BYTES);
    const buffer = Buffer.alloc(length);
    const handle = await open(this.path, "r");
    try {
      const { bytesRead } = await handle.read(buffer, 0, length, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buffer.subarray(0, bytesRead).toString("utf8");
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      if (this.partial.length > MAX_READ_BYTES) this.partial = "";
      return lines.map(parseProgressLine).filter((l): l is ProgressLine => l !== undefined);
    } finally {
      await handle.close();
    }
  }
}

export function parseProgressLine(line: string): ProgressLine | undefined {
  let values: unknown;
  try {
    values = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof values !== "object" || values === null || Array.isArray(values)) return undefined;
  const record = values as Record<string, unknown>;
  const out: ProgressLine = { values: record };
  const assign = (key: "epoch" | "step" | "loss" | "totalEpochs" | "totalSteps", names: readonly string[]): void => {
    const value = names.map((n) => record[n]).find((v): v is number => typeof v === "number" && Number.isFinite(v));
    if (value !== undefined) out[key] = value;
  };
  assign("epoch", ["epoch"]);
  assign("step", ["step", "global_step", "iter_num"]);
  assign("loss", ["loss", "train_loss"]);
  assign("totalEpochs", TOTAL_EPOCH_KEYS);
  assign("totalSteps", TOTAL_STEP_KEYS);
  return out;
}
