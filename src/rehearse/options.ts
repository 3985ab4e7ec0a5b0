import { resolve } from "node:path";
import { CkptError } from "../errors.js";
import type { Expectation } from "../verify/expectations.js";

/** What `ckptguard rehearse` is asked to do; durations in milliseconds, sizes in bytes. */
export interface RehearseOptions {
  /** Scratch directory: `reference/` and `killed/` attempts, their logs and `rehearsal.md` go here. */
  dir: string;
  /** The training command; `{dir}` becomes the attempt's directory, `{resume}` the checkpoint to resume from. */
  command: readonly string[];
  /** Expected training length: the final checkpoint must record this epoch. */
  epochs?: number;
  /** Expected training length in steps. */
  steps?: number;
  /** SIGKILL the second run this long after launch (default: once its first valid checkpoint appears). */
  killAfterMs?: number;
  expect?: readonly Expectation[];
  /** Require model, optimizer state and a position in every checkpoint (`--kind training`, default true). */
  requireComplete?: boolean;
  /** Longest acceptable time from launch to the first save and between saves. */
  maxGapMs?: number;
  /** Largest element difference at which the final checkpoints still count as equal (default 0: bitwise). */
  tolerance?: number;
  minFreeBytes?: number;
  /** Longest any single launch may take before it is killed (default 1 h). */
  timeoutMs?: number;
  /** How often the killed run's directory is looked at (default 250 ms). */
  pollMs?: number;
  /** The command's working directory (default ours). */
  cwd?: string;
}

export type ResolvedRehearseOptions = RehearseOptions & { dir: string; requireComplete: boolean; tolerance: number; timeoutMs: number; pollMs: number };

export const REHEARSE_DEFAULTS = { timeoutMs: 60 * 60_000, pollMs: 250, tolerance: 0 } as const;

/** Fills defaults and checks every value once, at the library's edge. */
export function resolveRehearseOptions(options: RehearseOptions): ResolvedRehearseOptions {
  if (typeof options.dir !== "string" || options.dir === "") throw usage("dir", options.dir, "a directory path");
  if (!Array.isArray(options.command) || options.command.length === 0 || options.command.some((a) => typeof a !== "string") || options.command[0] === "") {
    throw usage("command", options.command, "a command and its arguments after `--`");
  }
  for (const key of ["epochs", "steps", "killAfterMs", "maxGapMs", "tolerance", "minFreeBytes", "timeoutMs", "pollMs"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) throw usage(key, value, "a number >= 0");
  }
  if (options.pollMs === 0) throw usage("pollMs", 0, "a number > 0");
  if (options.epochs !== undefined && options.steps !== undefined) throw usage("steps", options.steps, "either epochs or steps, not both");
  return { ...REHEARSE_DEFAULTS, requireComplete: true, ...withoutUndefined(options), dir: resolve(options.dir), command: [...options.command] };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function usage(option: string, value: unknown, expected: string): CkptError {
  return new CkptError("USAGE", `rehearse option ${option}: expected ${expected}, got ${JSON.stringify(value)} (${Array.isArray(value) ? "array" : typeof value})`);
}
