import { formatBytes } from "../cli/style.js";
import { CkptError, isCkptError } from "../errors.js";
import { preflight } from "../run/preflight.js";
import { substituteDir } from "../run/restart.js";
import { StopSignals, type SignalSource } from "../run/stop-signals.js";
import { Launcher } from "./attempt.js";
import { checklistExitCode, fail, inTableOrder, pass, skipRest, type ChecklistLine } from "./checklist.js";
import { runKilled } from "./killed-run.js";
import { resolveRehearseOptions, type RehearseOptions, type ResolvedRehearseOptions } from "./options.js";
import { bestLine, checkpointsValidLine, progressLine, referenceRunLine, referenceUsable, runReference, saveIntervalLine } from "./reference-run.js";
import { writeMarkdownReport } from "./report.js";
import { finalMatchLine, finalNewestLine, killLeavesValidLine, resumePositionLine } from "./resume-checks.js";

/**
 * `ckptguard rehearse`: the pre-launch checklist. Preflight, an uninterrupted reference
 * run, its checkpoints checked as a series, then a second run SIGKILLed after its first
 * checkpoint and restarted via `{resume}`, whose end must match the reference's.
 */

export interface Rehearsal {
  /** The rehearsal directory (absolute). */
  dir: string;
  command: string[];
  /** Every check, in table order. */
  lines: ChecklistLine[];
  /** 0 every line passed or was skipped, 1 a check failed, 3 a checkpoint holds unsafe content. */
  exitCode: 0 | 1 | 3;
  /** `rehearsal.md` in `dir`. */
  report: string;
  /** The attempts' checkpoint directories and logs. */
  attempts: { reference?: { dir: string; log: string }; killed?: { dir: string; log: string } };
}

export interface RehearseIo {
  env?: NodeJS.ProcessEnv;
  /** Where SIGINT/SIGTERM/SIGHUP come from (default: this process); one kills the running command and stops the rehearsal. */
  signals?: SignalSource;
  /** Called as each line is decided (in table order), for live output. */
  onLine?: (line: ChecklistLine) => void;
}

export async function rehearse(options: RehearseOptions, io: RehearseIo = {}): Promise<Rehearsal> {
  const resolved = resolveRehearseOptions(options);
  const launcher = new Launcher();
  const stops = new StopSignals(io.signals ?? process, (signal) => launcher.stop(signal));
  stops.listen();
  try {
    return await new Checklist(resolved, io, launcher).run();
  } finally {
    stops.close();
  }
}

class Checklist {
  private readonly lines: ChecklistLine[] = [];
  private readonly attempts: Rehearsal["attempts"] = {};
  private unsafe = false;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly options: ResolvedRehearseOptions, private readonly io: RehearseIo, private readonly launcher: Launcher) {
    this.env = io.env ?? process.env;
  }

  async run(): Promise<Rehearsal> {
    if (!(await this.preflight())) return this.finish("preflight failed");
    const ref = await runReference(this.options, this.env, this.launcher);
    this.checkNotStopped();
    this.attempts.reference = { dir: ref.dir, log: ref.log };
    this.unsafe = ref.check.exitCode === 3;
    this.add(referenceRunLine(ref));
    if (!referenceUsable(ref)) return this.finish("needs a reference run with at least 2 checkpoints");
    this.add(saveIntervalLine(ref, this.options.maxGapMs), checkpointsValidLine(ref, this.options.expect?.length ?? 0), progressLine(ref), bestLine(ref));

    const killed = await runKilled(this.options, this.env, this.launcher);
    this.checkNotStopped();
    this.attempts.killed = { dir: killed.dir, log: killed.log };
    this.add(killLeavesValidLine(killed, this.options.killAfterMs));
    this.add(await resumePositionLine(killed, ref));
    this.add(await finalMatchLine(killed, ref, this.options));
    this.add(await finalNewestLine(killed, ref, this.options));
    return this.finish();
  }

  /** The preflight line; false when the rest cannot run. A directory we cannot write has no room for the report: that throws. */
  private async preflight(): Promise<boolean> {
    const { options } = this;
    try {
      const result = await preflight({
        dir: options.dir, stateDir: options.dir, command: substituteDir([options.command[0]!], options.dir)[0]!, env: this.env,
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}), ...(options.minFreeBytes !== undefined ? { minFreeBytes: options.minFreeBytes } : {}),
      });
      this.add(pass("preflight", `${options.dir} writable, ${formatBytes(result.freeBytes)} free (need ${formatBytes(result.requiredFreeBytes)}), command ${result.commandPath}`));
      return true;
    } catch (error) {
      if (!isCkptError(error) || error.code === "DIR_NOT_WRITABLE") throw error;
      this.add(fail("preflight", `${error.code}: ${error.message}${error.where.file ? ` (${error.where.file})` : ""}`));
      return false;
    }
  }

  private add(...decided: ChecklistLine[]): void {
    for (const line of decided) {
      this.lines.push(line);
      this.io.onLine?.(line);
    }
  }

  /** After a stop signal the attempt in flight was killed: what it left proves nothing. */
  private checkNotStopped(): void {
    if (this.launcher.stopped !== undefined) throw new CkptError("RUN_STOPPED", `rehearsal stopped by ${this.launcher.stopped}; the command was killed`, { file: this.options.dir });
  }

  /** Skips what is left (for `skipReason`), writes rehearsal.md and returns the result. */
  private async finish(skipReason?: string): Promise<Rehearsal> {
    if (skipReason !== undefined) this.add(...skipRest(this.lines, skipReason));
    const lines = inTableOrder(this.lines);
    const exitCode = checklistExitCode(lines, this.unsafe);
    const command = [...this.options.command];
    const report = await writeMarkdownReport(this.options.dir, { command, lines, exitCode });
    return { dir: this.options.dir, command, lines, exitCode, report, attempts: this.attempts };
  }
}
