import type { Command } from "commander";
import { CkptError } from "../errors.js";
import { rehearse } from "../rehearse/rehearse.js";
import type { RehearseOptions } from "../rehearse/options.js";
import { renderLine, summary, type StatusColor } from "../rehearse/report.js";
import { parseCount, parseDuration } from "../run/units.js";
import { parseExpectation } from "../verify/expectations.js";
import { parseSize } from "../verify/size-limits.js";
import type { CliContext, ExitCode } from "./context.js";
import { colorEnabled, palette } from "./style.js";
import { collect } from "./verify.js";

interface RehearseFlags {
  dir: string;
  epochs?: number;
  steps?: number;
  killAfter?: number;
  expect: string[];
  kind: string;
  maxGap?: number;
  tolerance?: number;
  minFree?: number;
  timeout?: number;
  json?: boolean;
}

export function registerRehearse(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  const duration = (flag: string) => (v: string) => parseDuration(flag, v);
  program
    .command("rehearse")
    .description("pre-launch checklist: a reference run, its checkpoints checked as a series, and a run SIGKILLed after its first checkpoint and resumed via {resume} must end where the reference did; exit 1 when a check fails")
    .usage("--dir <dir> [options] -- <command ...{dir}...{resume}...>")
    .argument("<command...>", "the training command after `--`; {dir} becomes each attempt's checkpoint directory, {resume} the checkpoint to resume from")
    .requiredOption("--dir <dir>", "scratch directory for the attempts (reference/, killed/), their logs and rehearsal.md")
    .option("--epochs <n>", "the run's length in epochs: its final checkpoint must record this epoch", (v) => parseCount("--epochs", v, 1))
    .option("--steps <n>", "the run's length in steps: its final checkpoint must record this step", (v) => parseCount("--steps", v, 1))
    .option("--kill-after <duration>", "SIGKILL the second run this long after launch (default: once its first valid checkpoint appears)", duration("--kill-after"))
    .option("--expect <path=value>", "every checkpoint's value at a dotted path must equal VALUE, e.g. config.hidden_dim=768 (repeatable)", collect, [])
    .option("--kind <kind>", "what every checkpoint must hold: training (model, optimizer state, a step or epoch) or any", "training")
    .option("--max-gap <duration>", "fail when the first save, or the time between two saves, takes longer than this", duration("--max-gap"))
    .option("--tolerance <number>", "final checkpoints count as equal when no element differs by more than this (default 0: bitwise)", parseTolerance)
    .option("--min-free <size>", "free space required in --dir (default: 3 times the largest checkpoint in it)", (v) => parseSize(v, "--min-free"))
    .option("--timeout <duration>", "kill any single launch that runs longer than this (default 1h)", duration("--timeout"))
    .option("--json", "print {dir, command, lines: [{id, title, status, reason}], exitCode, report, attempts} as JSON")
    .action(async (command: string[], flags: RehearseFlags) => {
      const options = toRehearseOptions(command, flags);
      const c = palette(colorEnabled(ctx.stdout, ctx.env));
      const color: StatusColor = (status, text) => (status === "PASS" ? c.green(text) : status === "FAIL" ? c.red(text) : c.dim(text));
      const result = await rehearse(options, {
        env: ctx.env,
        ...(flags.json ? {} : { onLine: (line) => ctx.stdout.write(renderLine(line, color)) }),
      });
      if (flags.json) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else ctx.stdout.write(`${summary(result.lines)}report: ${result.report}\n`);
      setExit(result.exitCode);
    });
}

function toRehearseOptions(command: string[], flags: RehearseFlags): RehearseOptions {
  if (flags.kind !== "any" && flags.kind !== "training") throw new CkptError("USAGE", `--kind: expected training or any, got ${JSON.stringify(flags.kind)} (string)`);
  const requireComplete = flags.kind === "training";
  const pairs: Array<[keyof RehearseOptions, unknown]> = [
    ["epochs", flags.epochs], ["steps", flags.steps], ["killAfterMs", flags.killAfter], ["maxGapMs", flags.maxGap], ["tolerance", flags.tolerance],
    ["minFreeBytes", flags.minFree], ["timeoutMs", flags.timeout],
  ];
  return Object.assign(
    { dir: flags.dir, command, requireComplete, expect: flags.expect.map((e) => parseExpectation(e)) },
    Object.fromEntries(pairs.filter(([, v]) => v !== undefined)),
  ) as RehearseOptions;
}

function parseTolerance(text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) throw new CkptError("USAGE", `--tolerance: expected a number >= 0, got ${JSON.stringify(text)} (string)`);
  return value;
}
