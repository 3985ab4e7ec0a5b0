import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { CkptError } from "../errors.js";
import { parseUnitCheck, type UnitCheck } from "../manifest/markers.js";
import type { RunOptions } from "../run/options.js";
import { readProgress, runFiles } from "../run/run-files.js";
import { runPreflight, superviseRun } from "../run/supervisor.js";
import type { WorkerRunOptions } from "../run/workers/options.js";
import { preflightWorkers, superviseWorkers } from "../run/workers/pool.js";
import { parseCount, parseDuration } from "../run/units.js";
import { parseSize } from "../verify/size-limits.js";
import type { CliContext, ExitCode } from "./context.js";
import { formatBytes } from "./style.js";
import { collect } from "./verify.js";

interface RunFlags {
  dir: string;
  stateDir?: string;
  fresh?: boolean;
  forceResume?: string;
  skipValidation?: boolean;
  checkOnly?: boolean;
  minFree?: number;
  maxRestarts?: number;
  backoff?: number;
  backoffMax?: number;
  maxGap?: number;
  finalCheck?: boolean;
  keepLast?: number;
  keepBest?: number;
  metric?: string;
  mode?: "min" | "max";
  totalEpochs?: number;
  totalSteps?: number;
  heartbeat?: number;
  progressInterval?: number;
  poll?: number;
  settle?: number;
  killAfter?: number;
  logMaxSize?: number;
  logKeep?: number;
  hash?: boolean;
  deep?: boolean;
  notify?: string[];
  quiet?: boolean;
  detach?: boolean;
  workers?: number;
  units?: string;
  unitsFile?: string;
  ordered?: boolean;
  batch?: number;
  maxRetries?: number;
  unitTimeout?: number;
  gpus?: string;
  pinGpus?: boolean;
  unitCheck?: UnitCheck;
}

/** The flags of the multi-worker mode, refused without `--workers`. */
const WORKER_FLAGS: ReadonlyArray<[keyof RunFlags, string]> = [
  ["units", "--units"], ["unitsFile", "--units-file"], ["ordered", "--ordered"], ["batch", "--batch"], ["maxRetries", "--max-retries"],
  ["unitTimeout", "--unit-timeout"], ["gpus", "--gpus"], ["pinGpus", "--pin-gpus"], ["unitCheck", "--unit-check"],
];

/** How long `--detach` waits for the background supervisor to report in. */
const DETACH_WAIT_MS = 10_000;

export function registerRun(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  const duration = (flag: string) => (v: string) => parseDuration(flag, v);
  const count = (flag: string, min = 0) => (v: string) => parseCount(flag, v, min);
  program
    .command("run")
    .description("run a training command, verify its checkpoints as they appear, and restart it from the newest valid one when it dies")
    .usage("--dir <dir> [options] -- <command ...{resume}...>")
    .argument("<command...>", "the training command after `--`; {resume} in its arguments becomes the checkpoint to resume from")
    .requiredOption("--dir <dir>", "checkpoint directory the command saves into (created when missing)")
    .option("--state-dir <dir>", "where the run files go (default <dir>/.ckptguard)")
    .option("--fresh", "ignore checkpoints already in --dir for the first launch")
    .option("--force-resume <path>", "resume from this checkpoint even if newer ones exist (until the run saves its own); it must still verify")
    .option("--skip-validation", "with --force-resume: resume from it without verifying it (a loud warning, recorded in progress.json)")
    .option("--check-only", "run the preflight checks and exit")
    .option("--min-free <size>", "free space required (default: 3 times the largest checkpoint in --dir)", (v) => parseSize(v, "--min-free"))
    .option("--max-restarts <n>", "relaunches allowed after failures (default 5)", count("--max-restarts"))
    .option("--backoff <duration>", "wait before the first relaunch, doubling for each failure in a row (default 1s)", duration("--backoff"))
    .option("--backoff-max <duration>", "longest wait between relaunches (default 5m)", duration("--backoff-max"))
    .option("--max-gap <duration>", "warn when no new valid checkpoint appears for this long", duration("--max-gap"))
    .option("--final-check", "after exit 0, require the last checkpoint to be valid, complete and the newest")
    .option("--keep-last <n>", "delete older valid checkpoints beyond the newest N (after the newer one is verified)", count("--keep-last", 1))
    .option("--keep-best <n>", "also keep the N best by --metric", count("--keep-best"))
    .option("--metric <name>", "metric the checkpoints record that ranks `best` (default: val_loss, eval_loss, ..., loss)")
    .option("--mode <min|max>", "whether a lower or higher --metric is better (default: min for losses)", parseMode)
    .option("--total-epochs <n>", "training length, for X/Y and the ETA (else read from the progress feed)", count("--total-epochs", 1))
    .option("--total-steps <n>", "training length in steps", count("--total-steps", 1))
    .option("--heartbeat <duration>", "heartbeat file refresh period (default 10s)", duration("--heartbeat"))
    .option("--progress-interval <duration>", "progress.json refresh period besides events (default 30s)", duration("--progress-interval"))
    .option("--poll <duration>", "directory poll period; inotify wakes the watcher sooner (default 5s)", duration("--poll"))
    .option("--settle <duration>", "how long a checkpoint's size must hold still before it is verified (default 2s)", duration("--settle"))
    .option("--kill-after <duration>", "SIGKILL the command this long after passing on SIGINT/SIGTERM (default 30s)", duration("--kill-after"))
    .option("--log-max-size <size>", "rotate run.log beyond this size (default 50MB)", (v) => parseSize(v, "--log-max-size"))
    .option("--log-keep <n>", "rotated logs kept (default 3)", count("--log-keep"))
    .option("--hash", "record each checkpoint's SHA-256 in manifest.json (costs ~0.8 ms of CPU per MB)")
    .option("--deep", "also scan each new checkpoint's float tensors for NaN/Inf as it appears (~2.5 ms of CPU per MB; resuming always does)")
    .option("--notify <url>", "POST a JSON event (with a Slack-compatible `text`) to this webhook on crash, restart, stale saves, an invalid checkpoint and the end (repeatable)", collect, [])
    .option("--quiet", "do not copy the command's output to this terminal (run.log still has it)")
    .option("--detach", "run in the background; print the supervisor's pid and where the log is")
    .option("--workers <n>", "run N worker processes over --units instead of one command; {worker} and {units} are replaced in the command", count("--workers", 1))
    .option("--units <list>", "with --workers: the units of work, comma-separated (names as in docs/markers.md)")
    .option("--units-file <file>", "with --workers: the units of work, one a line")
    .option("--ordered", "with --workers: the units are stages run one at a time in order; resume redoes the first not-done stage and all after it")
    .option("--batch <k>", "with --workers: units handed to one launch (default 1)", count("--batch", 1))
    .option("--max-retries <n>", "with --workers: relaunches of a unit after its first failure, on another worker (default 3)", count("--max-retries"))
    .option("--unit-timeout <duration>", "with --workers: kill a launch whose current unit runs longer than this", duration("--unit-timeout"))
    .option("--gpus <list>", "with --workers: CUDA_VISIBLE_DEVICES per worker, round-robin (0,1,2,3)")
    .option("--pin-gpus", "with --workers: worker i gets CUDA_VISIBLE_DEVICES=i")
    .option("--unit-check <size|hash|verify>", "with --workers: how a unit's outputs are checked after its launch and at resume (default verify)", (text) => parseUnitCheck(text, "--unit-check"))
    .action(async (command: string[], flags: RunFlags) => {
      if (flags.workers === undefined) {
        const stray = WORKER_FLAGS.find(([key]) => flags[key] !== undefined);
        if (stray) throw new CkptError("USAGE", `${stray[1]}: only with --workers N`);
      }
      const options = flags.workers !== undefined ? toWorkerOptions(command, flags) : toRunOptions(command, flags);
      if (flags.checkOnly) {
        const result = await preflightFor(options, ctx.env);
        ctx.stdout.write(`preflight ok: ${result.options.dir} writable, ${formatBytes(result.freeBytes)} free (need ${formatBytes(result.requiredFreeBytes)}), command ${result.commandPath}\n`);
        return;
      }
      if (flags.detach) {
        // commander keeps the argv it parsed in `rawArgs` (untyped): re-run exactly that, minus --detach.
        setExit(await detach((program as Command & { rawArgs: string[] }).rawArgs, options, ctx));
        return;
      }
      const io = { stdout: ctx.stdout, stderr: ctx.stderr, env: ctx.env };
      const result = "workers" in options ? await superviseWorkers(options as WorkerRunOptions, io) : await superviseRun(options, io);
      setExit(result.exitCode);
    });
}

function toRunOptions(command: string[], flags: RunFlags): RunOptions {
  const pairs: Array<[keyof RunOptions, unknown]> = [
    ["stateDir", flags.stateDir], ["fresh", flags.fresh], ["forceResume", flags.forceResume], ["skipValidation", flags.skipValidation], ["minFreeBytes", flags.minFree], ["maxRestarts", flags.maxRestarts],
    ["backoffMs", flags.backoff], ["backoffMaxMs", flags.backoffMax], ["maxGapMs", flags.maxGap], ["finalCheck", flags.finalCheck],
    ["keepLast", flags.keepLast], ["keepBest", flags.keepBest], ["metric", flags.metric], ["mode", flags.mode],
    ["totalEpochs", flags.totalEpochs], ["totalSteps", flags.totalSteps], ["heartbeatMs", flags.heartbeat],
    ["progressIntervalMs", flags.progressInterval], ["pollMs", flags.poll], ["settleMs", flags.settle], ["killAfterMs", flags.killAfter],
    ["logMaxBytes", flags.logMaxSize], ["logKeep", flags.logKeep], ["hash", flags.hash], ["deep", flags.deep], ["tee", flags.quiet ? false : undefined], ["notify", flags.notify?.length ? flags.notify : undefined],
  ];
  return Object.assign({ dir: flags.dir, command }, Object.fromEntries(pairs.filter(([, v]) => v !== undefined))) as RunOptions;
}

/** `--workers N` and its flags; without `--workers` they are refused (they would be ignored). */
function toWorkerOptions(command: string[], flags: RunFlags): WorkerRunOptions {
  const split = (text: string): string[] => text.split(",").map((s) => s.trim()).filter(Boolean);
  if (flags.gpus !== undefined && flags.pinGpus) throw new CkptError("USAGE", "--gpus and --pin-gpus: give one of them (both set CUDA_VISIBLE_DEVICES)");
  if (flags.gpus !== undefined && split(flags.gpus).length === 0) throw new CkptError("USAGE", `--gpus: expected GPU indices or UUIDs such as 0,1,2, got ${JSON.stringify(flags.gpus)} (string)`);
  const gpus = flags.gpus !== undefined ? split(flags.gpus) : flags.pinGpus ? Array.from({ length: flags.workers! }, (_, i) => String(i)) : undefined;
  const pairs: Array<[keyof WorkerRunOptions, unknown]> = [
    ["workers", flags.workers], ["units", flags.units !== undefined ? split(flags.units) : undefined], ["unitsFile", flags.unitsFile], ["ordered", flags.ordered],
    ["batch", flags.batch], ["maxRetries", flags.maxRetries], ["unitTimeoutMs", flags.unitTimeout], ["gpus", gpus], ["unitCheck", flags.unitCheck],
  ];
  return Object.assign(toRunOptions(command, flags), Object.fromEntries(pairs.filter(([, v]) => v !== undefined))) as unknown as WorkerRunOptions;
}

function preflightFor(options: RunOptions, env: NodeJS.ProcessEnv): ReturnType<typeof runPreflight> {
  return "workers" in options ? preflightWorkers(options as WorkerRunOptions, env) : runPreflight(options, env);
}

function parseMode(text: string): "min" | "max" {
  if (text === "min" || text === "max") return text;
  throw new CkptError("USAGE", `--mode: expected min or max, got ${JSON.stringify(text)} (string)`);
}

/**
 * `--detach`: preflight here (so a failure is seen), then the same command line without
 * `--detach` in a new session with no terminal, reporting once it has written its run files.
 */
async function detach(rawArgs: readonly string[], options: RunOptions, ctx: CliContext): Promise<ExitCode> {
  const { options: resolved } = await preflightFor(options, ctx.env);
  const end = rawArgs.includes("--") ? rawArgs.indexOf("--") : rawArgs.length;
  const args = [...rawArgs.slice(0, end).filter((a) => a !== "--detach"), "--quiet", ...rawArgs.slice(end)];
  const cli = fileURLToPath(new URL("./main.js", import.meta.url));
  const child = spawn(process.execPath, [cli, ...args], { detached: true, stdio: "ignore", env: ctx.env });
  let exited = false;
  child.once("exit", () => { exited = true; });
  const files = runFiles(resolved.stateDir);
  for (let waited = 0; waited < DETACH_WAIT_MS && !exited; waited += 50) {
    if ((await readProgress(files))?.pid === child.pid) break;
    await sleep(50);
  }
  child.unref();
  if (exited) {
    ctx.stderr.write(`ckptguard: the background supervisor exited at once; see ${files.log}\n`);
    return 1;
  }
  ctx.stdout.write(`ckptguard: supervising in the background, pid ${child.pid}\n  log:    ${files.log}\n  status: ckptguard status ${resolved.dir}${options.stateDir ? ` --state-dir ${resolved.stateDir}` : ""}\n  stop:   kill ${child.pid}\n`);
  return 0;
}
