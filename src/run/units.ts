import { CkptError } from "../errors.js";

/**
 * Durations as people type them on a command line (`5m`, `90s`, `500ms`), and back; whole
 * numbers. Sizes are parsed by verify/size-limits.ts `parseSize`. Parsing errors name the
 * option, the value and its type.
 */

const DURATION_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `5m` -> 300000. A bare number is seconds. */
export function parseDuration(option: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  const factor = match ? DURATION_MS[(match[2] ?? "s").toLowerCase()] : undefined;
  if (!match || factor === undefined) throw usage(option, text, "a duration such as 30s, 5m, 2h or 500ms");
  return Math.round(Number(match[1]) * factor);
}

/** A whole number >= `min`. */
export function parseCount(option: string, text: string, min = 0): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) throw usage(option, text, `a whole number >= ${min}`);
  return value;
}

/** 312000 -> "5m12s", 4200 -> "4.2s", 350 -> "350ms", 7500000 -> "2h05m". */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const sign = ms < 0 ? "-" : "";
  if (abs < 1_000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 10_000) return `${sign}${(abs / 1_000).toFixed(1)}s`;
  const totalSeconds = Math.round(abs / 1_000);
  if (totalSeconds < 60) return `${sign}${totalSeconds}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes < 60) return `${sign}${totalMinutes}m${String(totalSeconds % 60).padStart(2, "0")}s`;
  const hours = Math.floor(totalMinutes / 60);
  if (hours < 48) return `${sign}${hours}h${String(totalMinutes % 60).padStart(2, "0")}m`;
  return `${sign}${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, "0")}h`;
}

function usage(option: string, text: string, expected: string): CkptError {
  return new CkptError("USAGE", `${option}: expected ${expected}, got ${JSON.stringify(text)} (${typeof text})`);
}
