/**
 * Times `ckptguard verify` on a ~2 GB torch.distributed.checkpoint of 8 shard files with its
 * CRC pass on one thread (`--workers 1`) and spread over worker threads (the default), against
 * torch's own load of the same checkpoint, with a warm page cache; checks issue #9's target
 * (parallel >= 1.6x the single-thread throughput).
 *
 *     npm run bench:dcp
 *
 * Writes bench/tmp/dcp-2g/ with bench/make_dcp_checkpoint.py (8 gloo processes, about 30 s)
 * when it is absent. The two verify modes alternate run by run, so load from other work on the
 * machine falls on both alike. Peak RSS comes from GNU time (`/usr/bin/time`, package `time`).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, ROOT } from "./bench-paths.js";
import { fmt, GB, GNU_TIME, MB, median, runMeasured, runProcess, warmPageCache } from "./measure.js";

const RUNS = 5;
/** torch's load takes ~20 s a run here; three runs give a median without doubling the bench. */
const TORCH_RUNS = 3;
const TARGET_RATIO = 1.6;

const CHECKPOINT = join(ROOT, "bench/tmp/dcp-2g");

interface Row {
  label: string;
  times: number[];
  medianSeconds: number | undefined;
  peakRss: number | undefined;
  failure?: string;
}

/** Runs each command once untimed, then RUNS times in turn (a, b, a, b, ...). */
async function measureAlternating(commands: Array<{ label: string; argv: string[] }>, rssDir: string | undefined): Promise<Row[]> {
  const rows: Row[] = commands.map(({ label }) => ({ label, times: [], medianSeconds: undefined, peakRss: undefined }));
  const rss: number[][] = commands.map(() => []);
  for (const [i, { argv }] of commands.entries()) {
    const warmup = await runMeasured(argv, undefined);
    if (warmup.code !== 0) rows[i]!.failure = `exit ${warmup.code}: ${warmup.stderr.slice(0, 2000)}${warmup.stdout.slice(0, 2000)}`;
  }
  for (let run = 0; run < RUNS; run++) {
    for (const [i, { argv }] of commands.entries()) {
      if (rows[i]!.failure !== undefined) continue;
      const result = await runMeasured(argv, rssDir === undefined ? undefined : join(rssDir, "rss.txt"));
      if (result.code !== 0) rows[i]!.failure = `exit ${result.code}: ${result.stderr.slice(0, 2000)}`;
      rows[i]!.times.push(result.seconds);
      if (result.peakRss !== undefined) rss[i]!.push(result.peakRss);
    }
  }
  rows.forEach((row, i) => {
    row.medianSeconds = row.failure === undefined ? median(row.times) : undefined;
    row.peakRss = rss[i]!.length > 0 ? Math.max(...rss[i]!) : undefined;
    process.stdout.write(`  ${row.label}: ${row.times.map((t) => t.toFixed(3)).join(" ")} s\n`);
  });
  return rows;
}

/** torch 1.13's load_state_dict(no_dist=True), timed inside one Python process (bench/load_dcp.py). */
async function measureTorchLoad(): Promise<Row> {
  const label = "torch DCP load_state_dict, in Python";
  const result = await runProcess([PYTHON, join(ROOT, "bench/load_dcp.py"), CHECKPOINT, String(TORCH_RUNS)], { stdio: ["ignore", "pipe", "pipe"] });
  const [times = "", medianText = "", rssText = ""] = result.stdout.trim().split("\n");
  const seconds = Number.parseFloat(medianText);
  if (result.code !== 0 || !Number.isFinite(seconds)) {
    return { label, times: [], medianSeconds: undefined, peakRss: undefined, failure: `exit ${result.code}: ${result.stderr.slice(0, 4000)}` };
  }
  process.stdout.write(`  ${label}: ${times} s\n`);
  return { label, times: times.split(" ").map(Number), medianSeconds: seconds, peakRss: Number.parseInt(rssText, 10) };
}

async function ensureCheckpoint(): Promise<void> {
  if (existsSync(join(CHECKPOINT, ".metadata")) && existsSync(`${CHECKPOINT}.done`)) return;
  process.stdout.write(`writing ${CHECKPOINT} with 8 gloo processes (about 30 s, 4 GB RAM)\n`);
  const result = await runProcess([PYTHON, join(ROOT, "bench/make_dcp_checkpoint.py"), CHECKPOINT], { stdio: "inherit" });
  if (result.code !== 0) throw new Error(`make_dcp_checkpoint.py exited with ${result.code}`);
}

function checkpointFiles(): string[] {
  return readdirSync(CHECKPOINT).map((name) => join(CHECKPOINT, name));
}

function printTable(rows: readonly Row[], bytes: number, baseline: number | undefined): void {
  const header = ["measurement", "median s", "GB/s", "vs 1 thread", "peak RSS MB"];
  const body = rows.map((row) => [
    row.label,
    row.failure !== undefined ? "FAILED" : fmt(row.medianSeconds, 3),
    fmt(row.medianSeconds === undefined ? undefined : bytes / GB / row.medianSeconds, 2),
    fmt(row.medianSeconds === undefined || baseline === undefined ? undefined : baseline / row.medianSeconds, 2) + " x",
    fmt(row.peakRss === undefined ? undefined : row.peakRss / MB, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? "").length)));
  for (const cells of [header, ...body]) {
    process.stdout.write(cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ") + "\n");
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) process.stderr.write(`${CLI} is missing: build first with npx tsc -p tsconfig.json (or npm run bench:dcp)\n`);
  const hasGnuTime = existsSync(GNU_TIME);
  if (!hasGnuTime) process.stdout.write(`${GNU_TIME} not found: peak RSS of verify is not measured. Install it with: apt-get install time\n`);
  await ensureCheckpoint();
  const files = checkpointFiles();
  const bytes = files.reduce((sum, path) => sum + statSync(path).size, 0);
  const shards = files.filter((path) => path.endsWith(".distcp")).length;
  process.stdout.write(`checkpoint ${CHECKPOINT}: ${shards} shard files, ${(bytes / GB).toFixed(3)} GB; ${availableParallelism()} cores; warming the page cache\n`);
  await warmPageCache(files);

  const rssDir = hasGnuTime ? await mkdtemp(join(tmpdir(), "ckptguard-bench-")) : undefined;
  try {
    // Other work on the machine skews every figure (and the ratio most): say how busy it was.
    process.stdout.write(`timing ${RUNS} runs each, alternating, after one untimed run (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")})\n`);
    const node = process.execPath;
    const [single, parallel] = await measureAlternating([
      { label: "ckptguard verify --workers 1 (process)", argv: [node, CLI, "verify", "--workers", "1", CHECKPOINT] },
      { label: "ckptguard verify, worker threads (process)", argv: [node, CLI, "verify", CHECKPOINT] },
    ], rssDir);
    const torch = await measureTorchLoad();
    process.stdout.write(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n\n`);
    const rows = [single!, parallel!, torch];
    printTable(rows, bytes, single!.medianSeconds);
    for (const row of rows) if (row.failure !== undefined) process.stdout.write(`\n${row.label} FAILED: ${row.failure}\n`);

    const ratio = single!.medianSeconds !== undefined && parallel!.medianSeconds !== undefined ? single!.medianSeconds / parallel!.medianSeconds : undefined;
    const verdict = ratio === undefined ? "NOT MEASURED" : ratio >= TARGET_RATIO ? "MET" : "NOT MET";
    process.stdout.write(`\ntarget\n  worker threads >= ${TARGET_RATIO}x the single-thread throughput  ${fmt(ratio, 2)} x  ${verdict}\n`);
    if (single!.failure !== undefined || parallel!.failure !== undefined) process.exitCode = 1;
  } finally {
    if (rssDir !== undefined) await rm(rssDir, { recursive: true, force: true });
  }
}

await main();
