import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { qualifies } from "../catalog/catalog.js";
import { readCatalogEntry, type CatalogEntry } from "../catalog/entry.js";
import { selectCheckpoint } from "../catalog/latest.js";
import { qualificationRules } from "../catalog/rules.js";
import { findCandidates } from "../catalog/scan.js";
import { freshAttemptDir, writeLaunchLog, type Launch, type LaunchEnd } from "./attempt.js";
import type { Launcher } from "./attempt.js";
import type { ResolvedRehearseOptions } from "./options.js";

/**
 * The killed run: the command in `<dir>/killed/`, SIGKILLed (its whole process group)
 * once its first valid checkpoint appears (or `killAfterMs` after launch), then
 * relaunched with `{resume}` = the checkpoint `ckptguard latest` would pick, and run to
 * the end. What the kill left behind is kept for the checklist.
 */

export interface KilledRun {
  dir: string;
  first: LaunchEnd;
  /** Milliseconds after launch the SIGKILL went out; undefined when the command ended first. */
  killedAfterMs?: number;
  /** What triggered the kill: the first valid checkpoint's path, or the timer. */
  trigger?: string;
  /** Checkpoints the kill left corrupt or unreadable (a non-atomic save cut short). */
  leftBroken: CatalogEntry[];
  resumeFrom?: CatalogEntry;
  /** Why nothing could be resumed from. */
  noResumeReason?: string;
  /** When the relaunch started (files modified from then on are the resumed run's). */
  restartedAt?: number;
  second?: LaunchEnd;
  log: string;
}

export async function runKilled(options: ResolvedRehearseOptions, env: NodeJS.ProcessEnv, launcher: Launcher): Promise<KilledRun> {
  const dir = await freshAttemptDir(options.dir, "killed");
  const common = {
    command: options.command, dir, env, progressFile: join(options.dir, "killed.progress.jsonl"), timeoutMs: options.timeoutMs,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  };
  const first = launcher.launch(common);
  const timer = new AbortController();
  const trigger = options.killAfterMs !== undefined
    ? sleep(options.killAfterMs, "timer", { signal: timer.signal }).catch(() => undefined)
    : firstValidCheckpoint(first, dir, options);
  const outcome = await Promise.race([trigger, first.ended.then(() => undefined)]);
  timer.abort(); // a command that ended first must not leave the --kill-after timer holding the process open
  let killedAfterMs: number | undefined;
  if (outcome !== undefined && first.child.signalGroup("SIGKILL")) killedAfterMs = Date.now() - first.startedAt;
  const firstEnd = await first.ended;
  const run: KilledRun = { dir, first: firstEnd, leftBroken: [], log: "" };
  if (killedAfterMs === undefined || firstEnd.exit.signal !== "SIGKILL") {
    run.log = await writeLaunchLog(options.dir, "killed", [firstEnd]);
    return run;
  }
  Object.assign(run, { killedAfterMs, trigger: outcome });

  const selection = await selectCheckpoint(dir, { requireComplete: options.requireComplete, ...(options.expect ? { expect: options.expect } : {}) });
  run.leftBroken = selection.skipped.filter((e) => !e.inProgress && (e.verdict === "corrupt" || e.verdict === "unreadable"));
  if (selection.chosen === undefined) {
    run.noResumeReason = selection.reason ?? "no valid checkpoint";
    run.log = await writeLaunchLog(options.dir, "killed", [firstEnd]);
    return run;
  }
  run.resumeFrom = selection.chosen;
  run.restartedAt = Date.now();
  run.second = await launcher.launch({ ...common, resume: selection.chosen.path }).ended;
  run.log = await writeLaunchLog(options.dir, "killed", [firstEnd, run.second]);
  return run;
}

/**
 * Resolves with the path of the first checkpoint in the attempt's directory that is
 * valid, complete and meets the expectations. Cheap between saves: a directory listing
 * and a stat per file each poll; a file is read only once its size and mtime held still
 * over one poll (so a save is never read mid-write), and once per version.
 */
async function firstValidCheckpoint(attempt: Launch, dir: string, options: ResolvedRehearseOptions): Promise<string | undefined> {
  let running = true;
  void attempt.ended.then(() => { running = false; });
  const rules = qualificationRules({ requireComplete: options.requireComplete, ...(options.expect ? { expect: options.expect } : {}) });
  const previous = new Map<string, string>();
  const read = new Set<string>();
  while (running) {
    await sleep(options.pollMs);
    const look = await findCandidates(dir).catch(() => undefined);
    for (const candidate of look?.candidates ?? []) {
      if (candidate.inProgress) continue;
      const version = `${candidate.size}:${candidate.mtimeMs}`;
      const settled = previous.get(candidate.path) === version;
      previous.set(candidate.path, version);
      if (!settled || read.has(`${candidate.path}@${version}`)) continue;
      read.add(`${candidate.path}@${version}`);
      const { entry } = await readCatalogEntry(candidate, { check: "full", ...rules });
      if (qualifies(entry)) return candidate.path;
    }
  }
  return undefined;
}
