import type { Command } from "commander";
import { CkptError } from "../errors.js";
import { checkRules } from "../verify/checks.js";
import { verifyPaths, type VerifySummary } from "../verify/verify-paths.js";
import type { Report } from "../verify/report.js";
import type { CliContext, ExitCode } from "./context.js";
import { scanProgressBar } from "./scan-progress.js";
import { colorEnabled, palette } from "./style.js";

/** How many failures the human summary spells out before "... and N more". */
const FAILURES_SHOWN = 5;

interface VerifyFlags {
  json?: boolean;
  allowGlobal?: string[];
  deep?: boolean;
  require?: string[];
  kind?: string;
  expect?: string[];
  minSize?: string;
  maxSize?: string;
  acceptVersion?: string;
  workers?: string;
}

export function registerVerify(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("verify")
    .description("check that checkpoints are whole, safe, readable and complete (CRC of every member, pickle safety, tensor bounds, optimizer state; NaN/Inf with --deep)")
    .argument("<path...>", "checkpoint files or directories (searched for .pt .pth .ckpt .bin .safetensors .distcp and zip files)")
    .option("--json", "print {files: [report...], summary} as JSON")
    .option("--allow-global <module.name>", "trust one more pickle global (repeatable)", collect, [])
    .option("--deep", "also read every floating-point tensor and report NaN/Inf (NON_FINITE)")
    .option("--require <key>", "a dotted key the checkpoint must hold, e.g. optimizer_state_dict (repeatable)", collect, [])
    .option("--kind <kind>", "require the parts of a kind of checkpoint: training = model + optimizer + step/epoch")
    .option("--expect <path=value>", "the value at a dotted path must equal VALUE (JSON or a bare string); PATH may end in .shape/.dtype (repeatable)", collect, [])
    .option("--min-size <size>", "fail files smaller than this (10MB, 1.5GiB, bytes)")
    .option("--max-size <size>", "fail files larger than this")
    .option("--accept-version <range>", "semver range of accepted checkpoint versions (pytorch-lightning_version, version, checkpoint_version)")
    .option("--workers <n>", "threads for the CRC pass (1: the main thread only; default: one per core, at most 4, for 256 MiB or more)")
    .action(async (paths: string[], opts: VerifyFlags) => {
      const workers = opts.workers === undefined ? undefined : parseWorkers(opts.workers);
      const rules = checkRules({
        require: opts.require ?? [], expect: opts.expect ?? [],
        ...(opts.kind !== undefined ? { kind: opts.kind } : {}),
        ...(opts.minSize !== undefined ? { minSize: opts.minSize } : {}),
        ...(opts.maxSize !== undefined ? { maxSize: opts.maxSize } : {}),
        ...(opts.acceptVersion !== undefined ? { acceptVersion: opts.acceptVersion } : {}),
      });
      const onScanProgress = opts.deep ? await scanProgressBar(ctx.stderr, ctx.env) : undefined;
      const options = {
        allowGlobals: new Set(opts.allowGlobal ?? []), deep: opts.deep === true,
        ...(onScanProgress ? { onScanProgress } : {}), ...(workers !== undefined ? { workers } : {}),
      };
      const result = await verifyPaths(paths, options, rules);
      if (opts.json) ctx.stdout.write(`${JSON.stringify({ files: result.files, summary: result.summary }, null, 2)}\n`);
      else ctx.stdout.write(renderVerify(result.files, result.summary, colorEnabled(ctx.stdout, ctx.env)));
      setExit(result.exitCode);
    });
}

/** `--workers`: 1 to 64 threads (a bound far above what a page cache feeds, so a typo cannot start thousands). */
function parseWorkers(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > 64) {
    throw new CkptError("USAGE", `--workers: expected an integer from 1 to 64, got ${JSON.stringify(text)} (string)`);
  }
  return n;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function renderVerify(files: readonly Report[], summary: VerifySummary, color: boolean): string {
  const c = palette(color);
  const paint = (r: Report) => (r.verdict === "valid" ? c.green : r.verdict === "unsafe" ? c.red : c.yellow)(r.verdict.padEnd(12));
  const lines = files.map((r) => `${paint(r)} ${r.path}${r.format === "unknown" ? "" : c.dim(`  (${r.format})`)}`);
  const counts = Object.entries(summary.by_verdict).filter(([, n]) => n > 0).map(([v, n]) => `${n} ${v}`);
  lines.push("", `${files.length} checked: ${counts.join(", ")}`);
  const failures = files.filter((r) => r.verdict !== "valid");
  for (const r of failures.slice(0, FAILURES_SHOWN)) {
    const first = r.problems.find((p) => p.severity === "error") ?? r.problems[0];
    lines.push(`  ${r.path}: ${first ? `${first.code}: ${first.message}` : r.verdict}`);
  }
  if (failures.length > FAILURES_SHOWN) lines.push(`  ... and ${failures.length - FAILURES_SHOWN} more`);
  return `${lines.join("\n")}\n`;
}
