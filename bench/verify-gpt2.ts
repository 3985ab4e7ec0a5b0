/**
 * Times `ckptguard verify` on a GPT-2-small + AdamW checkpoint (~1.5 GB) against torch.load,
 * with a warm page cache, and checks the performance targets of DESIGN.md.
 *
 *     npm run build && node dist/bench/verify-gpt2.js
 *
 * Writes bench/tmp/gpt2.pt with bench/make_gpt2_checkpoint.py when it is absent. Peak RSS comes
 * from GNU time (`/usr/bin/time`, Debian package `time`).
 */
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, ROOT } from "./bench-paths.js";
import { fmt, GB, GNU_TIME, MB, median, runMeasured, runProcess, warmPageCache, type ProcessRun } from "./measure.js";

const RUNS = 5;

const CHECKPOINT = join(ROOT, "bench/tmp/gpt2.pt");

interface Measurement {
  label: string;
  medianSeconds: number | undefined;
  peakRss: number | undefined;
  /** Set when a run exited non-zero; the remaining runs are skipped. */
  failure?: ProcessRun;
}

async function measure(label: string, argv: string[], rssDir: string | undefined): Promise<Measurement> {
  const times: number[] = [];
  const rss: number[] = [];
  const warmup = await runMeasured(argv, undefined); // untimed: loads code and libraries once
  if (warmup.code !== 0) return { label, medianSeconds: undefined, peakRss: undefined, failure: warmup };
  for (let i = 0; i < RUNS; i++) {
    const run = await runMeasured(argv, rssDir === undefined ? undefined : join(rssDir, "rss.txt"));
    if (run.code !== 0) return { label, medianSeconds: undefined, peakRss: undefined, failure: run };
    times.push(run.seconds);
    if (run.peakRss !== undefined) rss.push(run.peakRss);
  }
  process.stdout.write(`  ${label}: ${times.map((t) => t.toFixed(3)).join(" ")} s\n`);
  return { label, medianSeconds: median(times), peakRss: rss.length > 0 ? Math.max(...rss) : undefined };
}

/** torch.load timed inside one Python process, so interpreter start and `import torch` are excluded. */
async function measureTorchLoadInProcess(): Promise<Measurement> {
  const script = [
    "import gc, statistics, sys, time, torch",
    "times = []",
    `for _ in range(${RUNS}):`,
    "    t0 = time.perf_counter(); obj = torch.load(sys.argv[1], map_location='cpu')",
    "    times.append(time.perf_counter() - t0); del obj; gc.collect()",
    "print(' '.join(f'{t:.3f}' for t in times)); print(statistics.median(times))",
  ].join("\n");
  const label = "(c) torch.load alone, in Python";
  const result = await runProcess([PYTHON, "-c", script, CHECKPOINT], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = result.stdout.trim().split("\n");
  const seconds = Number.parseFloat(lines.pop() ?? "");
  if (result.code !== 0 || !Number.isFinite(seconds)) {
    return { label, medianSeconds: undefined, peakRss: undefined, failure: { ...result, seconds: 0, peakRss: undefined } };
  }
  process.stdout.write(`  ${label}: ${lines.join(" ")} s\n`);
  return { label, medianSeconds: seconds, peakRss: undefined };
}

async function ensureCheckpoint(): Promise<void> {
  if (existsSync(CHECKPOINT) && existsSync(`${CHECKPOINT}.done`)) return;
  process.stdout.write(`writing ${CHECKPOINT} (about 20 s, 2.5 GB RAM)\n`);
  const result = await runProcess([PYTHON, join(ROOT, "bench/make_gpt2_checkpoint.py"), CHECKPOINT], { stdio: "inherit" });
  if (result.code !== 0) throw new Error(`make_gpt2_checkpoint.py exited with ${result.code}`);
}

function printTable(rows: Measurement[], fileSize: number): void {
  const header = ["measurement", "median s", "peak RSS MB", "GB/s"];
  const body = rows.map((row) => [
    row.label,
    row.failure ? "FAILED" : fmt(row.medianSeconds, 3),
    fmt(row.peakRss === undefined ? undefined : row.peakRss / MB, 0),
    fmt(row.medianSeconds === undefined ? undefined : fileSize / GB / row.medianSeconds, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? "").length)));
  for (const cells of [header, ...body]) {
    process.stdout.write(cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ") + "\n");
  }
}

function printFailure(row: Measurement): void {
  if (!row.failure) return;
  process.stdout.write(`\n${row.label} FAILED with exit ${row.failure.code}\n`);
  process.stdout.write(`stderr:\n${row.failure.stderr.slice(0, 4000)}\nstdout:\n${row.failure.stdout.slice(0, 4000)}\n`);
}

interface Target {
  name: string;
  value: number | undefined;
  shown: string;
  met: (value: number) => boolean;
}

function printTargets(targets: Target[]): void {
  process.stdout.write("\ntargets\n");
  for (const target of targets) {
    const verdict = target.value === undefined ? "NOT MEASURED" : target.met(target.value) ? "MET" : "NOT MET";
    process.stdout.write(`  ${target.name.padEnd(44)} ${target.shown.padStart(10)}  ${verdict}\n`);
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) {
    process.stderr.write(`${CLI} is missing: build first with npx tsc -p tsconfig.json (or npm run bench)\n`);
  }
  const hasGnuTime = existsSync(GNU_TIME);
  if (!hasGnuTime) {
    process.stdout.write(`${GNU_TIME} not found: peak RSS is not measured. Install it with: apt-get install time\n`);
  }
  await ensureCheckpoint();
  const fileSize = statSync(CHECKPOINT).size;
  process.stdout.write(`checkpoint ${CHECKPOINT}: ${(fileSize / GB).toFixed(3)} GB; warming the page cache\n`);
  await warmPageCache([CHECKPOINT]);

  const rssDir = hasGnuTime ? await mkdtemp(join(tmpdir(), "ckptguard-bench-")) : undefined;
  try {
    // Other work on the machine skews every figure; say how busy it was.
    process.stdout.write(`timing ${RUNS} runs each after one untimed run (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")})\n`);
    const node = process.execPath;
    const verify = await measure("(a) ckptguard verify (process)", [node, CLI, "verify", CHECKPOINT], rssDir);
    const torchProcess = await measure("(b) python torch.load (process)",
      [PYTHON, "-c", "import sys, torch; torch.load(sys.argv[1], map_location='cpu')", CHECKPOINT], rssDir);
    const torchInProcess = await measureTorchLoadInProcess();
    const inspect = await measure("(d) ckptguard inspect (process)", [node, CLI, "inspect", CHECKPOINT], rssDir);
    const testzip = await measure("(e) python zipfile testzip (process)",
      [PYTHON, "-c", "import sys, zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)", CHECKPOINT], rssDir);

    const rows = [verify, torchProcess, torchInProcess, inspect, testzip];
    process.stdout.write("\n");
    printTable(rows, fileSize);
    rows.forEach(printFailure);

    const a = verify.medianSeconds;
    const ratio = (other: number | undefined): number | undefined => (a === undefined || other === undefined ? undefined : other / a);
    const speedupProcess = ratio(torchProcess.medianSeconds);
    const speedupLoad = ratio(torchInProcess.medianSeconds);
    const throughput = a === undefined ? undefined : fileSize / GB / a;
    const rssMb = verify.peakRss === undefined ? undefined : verify.peakRss / MB;
    const inspectMs = inspect.medianSeconds === undefined ? undefined : inspect.medianSeconds * 1000;
    printTargets([
      { name: "verify >= 5x faster than torch.load process", value: speedupProcess, shown: `${fmt(speedupProcess, 2)} x`, met: (v) => v >= 5 },
      { name: "verify >= 1.5x faster than torch.load alone", value: speedupLoad, shown: `${fmt(speedupLoad, 2)} x`, met: (v) => v >= 1.5 },
      { name: "verify throughput >= 3 GB/s", value: throughput, shown: `${fmt(throughput, 2)} GB/s`, met: (v) => v >= 3 },
      { name: "verify peak RSS <= 200 MB", value: rssMb, shown: `${fmt(rssMb, 0)} MB`, met: (v) => v <= 200 },
      { name: "inspect <= 150 ms", value: inspectMs, shown: `${fmt(inspectMs, 0)} ms`, met: (v) => v <= 150 },
    ]);
    if (verify.failure || inspect.failure) process.exitCode = 1;
  } finally {
    if (rssDir !== undefined) await rm(rssDir, { recursive: true, force: true });
  }
}

await main();
