/**
 * Times `ckptguard ls` on a run directory of 200 real torch checkpoints of ~5 MB each (the
 * issue's budget: under 2 s), and `ls --verify` (full CRC + NaN/Inf scan) and `latest` beside
 * it, with a warm page cache.
 *
 *     npx tsc -p tsconfig.json && node dist/bench/ls-200.js
 *
 * Writes bench/tmp/ls-200/ with bench/make_ls_checkpoints.py when it is absent (~1 GB).
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, ROOT } from "./bench-paths.js";

const RUNS = 5;
const COUNT = 200;
const BUDGET_SECONDS = 2;
const GNU_TIME = "/usr/bin/time";

const DIR = join(ROOT, "bench/tmp/ls-200");

function run(argv: string[]): Promise<{ code: number | null; seconds: number; stdout: string; stderr: string }> {
  const [file, ...args] = argv;
  return new Promise((resolvePromise) => {
    const started = process.hrtime.bigint();
    const child = spawn(file!, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("close", (code) => resolvePromise({
      code, seconds: Number(process.hrtime.bigint() - started) / 1e9,
      stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"),
    }));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * One untimed run, then RUNS timed ones; a failing run aborts with its output. CPU seconds
 * (user + sys, from GNU time) are printed beside wall time: on a shared 2-core machine the
 * wall time grows with everyone else's load, the CPU time much less.
 */
async function measure(label: string, args: string[], accept: (code: number | null) => boolean): Promise<number> {
  const argv = [process.execPath, CLI, ...args];
  const warm = await run(argv);
  if (!accept(warm.code)) throw new Error(`${label} exited ${warm.code}:\n${warm.stderr}\n${warm.stdout.slice(0, 2000)}`);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const timed = existsSync(GNU_TIME) ? await run([GNU_TIME, "-f", "%U %S", ...argv]) : await run(argv);
    times.push(timed.seconds);
    const [user, sys] = (timed.stderr.trim().split("\n").pop() ?? "").split(" ").map(Number);
    if (user !== undefined && sys !== undefined && Number.isFinite(user + sys)) cpu.push(user + sys);
  }
  const m = median(times);
  const cpuText = cpu.length > 0 ? `, CPU median ${median(cpu).toFixed(3)} s` : "";
  process.stdout.write(`  ${label.padEnd(34)} ${times.map((t) => t.toFixed(3)).join(" ")} s   median ${m.toFixed(3)} s${cpuText}\n`);
  return m;
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with npx tsc -p tsconfig.json`);
  const made = await run([PYTHON, join(ROOT, "bench/make_ls_checkpoints.py"), DIR, String(COUNT)]);
  if (made.code !== 0) throw new Error(`make_ls_checkpoints.py exited ${made.code}:\n${made.stderr}`);
  const files = readdirSync(DIR).filter((n) => n.endsWith(".pt"));
  const bytes = files.reduce((sum, n) => sum + statSync(join(DIR, n)).size, 0);
  process.stdout.write(`${DIR}: ${files.length} checkpoints, ${(bytes / 1e6).toFixed(0)} MB (${(bytes / files.length / 1e6).toFixed(2)} MB each); warming the page cache\n`);
  for (const n of files) await readFile(join(DIR, n));
  process.stdout.write(`timing ${RUNS} runs each after one untimed run (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")})\n`);

  const ls = await measure("ls (structure, no CRC)", ["ls", DIR], (c) => c === 0);
  const lsJson = await measure("ls --json", ["ls", DIR, "--json"], (c) => c === 0);
  const latest = await measure("latest (structure + 1 full verify)", ["latest", DIR, "--quiet"], (c) => c === 0);
  const verify = await measure("ls --verify (CRC + NaN/Inf, all)", ["ls", DIR, "--verify"], (c) => c === 0);
  const budget = Math.max(ls, lsJson);
  process.stdout.write(`\ntarget: ls of ${COUNT} x 5 MB under ${BUDGET_SECONDS} s: ${budget.toFixed(3)} s  ${budget < BUDGET_SECONDS ? "MET" : "NOT MET"}\n`);
  process.stdout.write(`(latest ${latest.toFixed(3)} s; ls --verify reads all ${(bytes / 1e9).toFixed(2)} GB: ${verify.toFixed(3)} s, ${(bytes / 1e9 / verify).toFixed(2)} GB/s)\n`);
  if (budget >= BUDGET_SECONDS) process.exitCode = 1;
}

await main();
