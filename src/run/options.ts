import { join, resolve } from "node:path";
import type { MetricMode } from "../catalog/best.js";
import { CkptError } from "../errors.js";
import { checkNotifyUrls } from "./notify.js";
import { STATE_DIR_NAME } from "./run-files.js";

/** What `ckptguard run` is asked to do; every duration in milliseconds, every size in bytes. */
export interface RunOptions {
  /** The checkpoint directory the command saves into. */
  dir: string;
  /** The training command and its arguments; `{resume}` is replaced in the arguments. */
  command: readonly string[];
  /** Where the run files go (default `<dir>/.ckptguard`). */
  stateDir?: string;
  /** Ignore checkpoints already in `dir` for the first launch. */
  fresh?: boolean;
  /**
   * Resume from this checkpoint even when newer ones exist, until the run has saved a valid
   * one of its own. It must pass the resume check unless `skipValidation`.
   */
  forceResume?: string;
  /** With `forceResume`: resume from it unverified, with a VALIDATION_SKIPPED warning in the log and progress.json. */
  skipValidation?: boolean;
  /** Run the preflight checks and stop. */
  checkOnly?: boolean;
  /** Free bytes required (default: room for 3 checkpoints of the largest size seen). */
  minFreeBytes?: number;
  /** Relaunches allowed after failures (default 5). */
  maxRestarts?: number;
  /** Wait before the first relaunch, doubling for each failure in a row (default 1 s). */
  backoffMs?: number;
  backoffMaxMs?: number;
  /** Warn when no new valid checkpoint appears for this long. */
  maxGapMs?: number;
  /** After exit 0, require the final checkpoint to be valid, complete and the newest. */
  finalCheck?: boolean;
  keepLast?: number;
  keepBest?: number;
  /** Ranks `best` and `keepBest` (default: val_loss, eval_loss, ..., loss, the first any checkpoint records). */
  metric?: string;
  mode?: MetricMode;
  /** Training length, for "X/Y epochs" and the ETA (else taken from the progress feed). */
  totalEpochs?: number;
  totalSteps?: number;
  heartbeatMs?: number;
  progressIntervalMs?: number;
  /** Directory poll period (inotify wakes the watcher sooner). */
  pollMs?: number;
  /** How long a checkpoint's size and mtime must hold still before it is verified. */
  settleMs?: number;
  /** After forwarding SIGINT/SIGTERM, SIGKILL the child's group if it is still there this much later. */
  killAfterMs?: number;
  logMaxBytes?: number;
  logKeep?: number;
  /** SHA-256 every verified checkpoint into the manifest. */
  hash?: boolean;
  /** Also scan every new checkpoint's float tensors for NaN/Inf (resuming always does). */
  deep?: boolean;
  /** Copy the child's output to our stdout/stderr (default true; false when detached). Our own lines always go to stderr. */
  tee?: boolean;
  /** The child's working directory (default ours). */
  cwd?: string;
  /** Webhooks POSTed a JSON event on crash, restart, stale saves, an invalid checkpoint and the end (notify.ts). */
  notify?: readonly string[];
}

export type ResolvedRunOptions = Required<Omit<RunOptions, "minFreeBytes" | "maxGapMs" | "keepLast" | "keepBest" | "metric" | "mode" | "totalEpochs" | "totalSteps" | "cwd" | "forceResume">>
  & Pick<RunOptions, "minFreeBytes" | "maxGapMs" | "keepLast" | "keepBest" | "metric" | "mode" | "totalEpochs" | "totalSteps" | "cwd" | "forceResume">;

export const RUN_DEFAULTS = {
  maxRestarts: 5, backoffMs: 1_000, backoffMaxMs: 5 * 60_000, heartbeatMs: 10_000, progressIntervalMs: 30_000,
  pollMs: 5_000, settleMs: 2_000, killAfterMs: 30_000, logMaxBytes: 50_000_000, logKeep: 3,
} as const;

/** Fills defaults and checks every value once, at the library's edge. */
export function resolveRunOptions(options: RunOptions): ResolvedRunOptions {
  if (typeof options.dir !== "string" || options.dir === "") throw usage("dir", options.dir, "a directory path");
  if (!Array.isArray(options.command) || options.command.length === 0 || options.command.some((a) => typeof a !== "string") || options.command[0] === "") {
    throw usage("command", options.command, "a command and its arguments after `--`");
  }
  for (const key of ["minFreeBytes", "maxRestarts", "backoffMs", "backoffMaxMs", "maxGapMs", "keepLast", "keepBest", "totalEpochs", "totalSteps",
    "heartbeatMs", "progressIntervalMs", "pollMs", "settleMs", "killAfterMs", "logMaxBytes", "logKeep"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) throw usage(key, value, "a number >= 0");
  }
  for (const key of ["heartbeatMs", "progressIntervalMs", "pollMs"] as const) {
    if (options[key] === 0) throw usage(key, 0, "a number > 0");
  }
  if (options.keepLast === 0) throw usage("keepLast", 0, "at least 1 (the newest valid checkpoint is always kept)");
  if (options.mode !== undefined && options.mode !== "min" && options.mode !== "max") throw usage("mode", options.mode, '"min" or "max"');
  if (options.forceResume !== undefined && (typeof options.forceResume !== "string" || options.forceResume === "")) throw usage("forceResume", options.forceResume, "a checkpoint path");
  if (options.forceResume !== undefined && options.fresh) throw usage("fresh", options.fresh, "not together with forceResume (--fresh ignores old checkpoints, --force-resume names one)");
  if (options.skipValidation && options.forceResume === undefined) throw usage("skipValidation", options.skipValidation, "only together with forceResume (--force-resume PATH)");
  const notify = checkNotifyUrls(options.notify ?? []);
  const dir = resolve(options.dir);
  return {
    ...RUN_DEFAULTS, fresh: false, checkOnly: false, finalCheck: false, hash: false, deep: false, tee: true, skipValidation: false,
    ...withoutUndefined(options),
    dir, command: [...options.command], stateDir: resolve(options.stateDir ?? join(dir, STATE_DIR_NAME)), notify,
    ...(options.forceResume !== undefined ? { forceResume: resolve(options.forceResume) } : {}),
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function usage(option: string, value: unknown, expected: string): CkptError {
  return new CkptError("USAGE", `run option ${option}: expected ${expected}, got ${JSON.stringify(value)} (${Array.isArray(value) ? "array" : typeof value})`);
}
