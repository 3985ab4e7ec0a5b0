/**
 * What `ckptguard run` costs while it watches a run that writes a 100 MB checkpoint every
 * 10 s: the supervisor's CPU share and RSS (sampled from /proc), and whether verifying each
 * new checkpoint delays the training process (its save times with and without us).
 *
 *     npm run build && node dist/bench/supervisor.js [--saves 6] [--interval 10] [--size-mb 100] [--hash]
 *
 * Targets (issue 6): < 1% of one core and < 80 MB RSS for the supervisor process.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PYTHON = "/usr/bin/python3";
/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s. */
const CLOCK_TICKS = 100;
const SAMPLE_MS = 200;

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const SAVES = option("--saves", 6);
const INTERVAL = option("--interval", 10);
const SIZE_MB = option("--size-mb", 100);
const HASH = process.argv.includes("--hash");

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}
const ROOT = findRepoRoot();
const CLI = join(ROOT, "dist/src/cli/main.js");
const WRITER = join(ROOT, "bench/checkpoint_writer.py");

interface Sample { at: number; wall: number; cpuSeconds: number; userSeconds: number; rssKb: number; hwmKb: number }

async function sampleProc(pid: number): Promise<Sample | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime + stime (fields 14, 15)
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
    return { at: performance.now(), wall: Date.now(), cpuSeconds, userSeconds: Number(fields[11]) / CLOCK_TICKS, rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
  } catch {
    return undefined;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): { pid: number; done: Promise<{ code: number | null; stdout: string }> } {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<{ code: number | null; stdout: string }>((resolve) => child.on("close", (code) => resolve({ code, stdout: Buffer.concat(chunks).toString("utf8") })));
  return { pid: child.pid!, done };
}

function saveTimes(text: string): number[] {
  return text.split("\n").filter((l) => l.startsWith("{\"epoch\"")).map((l) => (JSON.parse(l) as { save_seconds: number }).save_seconds);
}

async function main(): Promise<void> {
  console.log(`ckptguard run overhead: a ${SIZE_MB} MB checkpoint every ${INTERVAL} s, ${SAVES} saves${HASH ? ", --hash" : ""}; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const scratch = await mkdtemp(join(ROOT, "bench/tmp/supervisor-"));
  try {
    // 1. The writer alone: its save times without anyone watching.
    const baseDir = join(scratch, "alone");
    await mkdir(baseDir);
    const baseSaves = Math.max(2, Math.ceil(SAVES / 2));
    const alone = await run(PYTHON, [WRITER, "--out", baseDir, "--saves", String(baseSaves), "--interval", String(INTERVAL), "--size-mb", String(SIZE_MB)]).done;
    const aloneTimes = saveTimes(alone.stdout);
    await rm(baseDir, { recursive: true, force: true });

    // 2. The same writer under `ckptguard run`, sampling the supervisor process.
    const dir = join(scratch, "supervised");
    const supervisor = run(process.execPath, [CLI, "run", "--dir", dir, "--quiet", "--keep-last", "2", ...(HASH ? ["--hash"] : []),
      "--", PYTHON, WRITER, "--saves", String(SAVES), "--interval", String(INTERVAL), "--size-mb", String(SIZE_MB), "--resume", "{resume}"]);
    const samples: Sample[] = [];
    let finished = false;
    void supervisor.done.then(() => { finished = true; });
    while (!finished) {
      const sample = await sampleProc(supervisor.pid);
      if (sample) samples.push(sample);
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
    const result = await supervisor.done;
    if (result.code !== 0) throw new Error(`ckptguard run exited ${result.code}`);
    const log = await readFile(join(dir, ".ckptguard/run.log"), "utf8");
    const supervisedTimes = saveTimes(log);
    const manifest = JSON.parse(await readFile(join(dir, ".ckptguard/manifest.json"), "utf8")) as { checkpoints: Array<{ mtime: number; seen_at: string; verdict: string }> };

    // Steady state: from just after the first checkpoint was verified (startup and the first
    // verification's JIT compilation behind us) to the command's exit (teardown excluded):
    // N-1 saves and verifications in N-1 intervals.
    const logTime = (pattern: RegExp): number => Date.parse(/^\[([^\]]+)\]/.exec(log.split("\n").find((l) => pattern.test(l)) ?? "")?.[1] ?? "");
    const from = logTime(/ckptguard: checkpoint \S+: valid/) + 500;
    const to = logTime(/ckptguard: command exited/) - 100;
    const first = samples.find((s) => s.wall >= from) ?? samples[0]!;
    const last = [...samples].reverse().find((s) => s.wall <= to) ?? samples[samples.length - 1]!;
    const end = samples[samples.length - 1]!;
    const steadyCpu = (last.cpuSeconds - first.cpuSeconds) / ((last.at - first.at) / 1000);
    const wholeCpu = end.cpuSeconds / ((end.at - samples[0]!.at) / 1000);
    const peakRssMb = end.hwmKb / 1024;
    const meanRssMb = samples.reduce((a, s) => a + s.rssKb, 0) / samples.length / 1024;
    const verifyLag = manifest.checkpoints.map((c) => (Date.parse(c.seen_at) - c.mtime) / 1000);

    const steadyUser = (last.userSeconds - first.userSeconds) / ((last.at - first.at) / 1000);
    console.log(`supervisor CPU           ${(steadyCpu * 100).toFixed(2)}% of one core in steady state (user ${(steadyUser * 100).toFixed(2)}%, system ${((steadyCpu - steadyUser) * 100).toFixed(2)}%; ${((last.at - first.at) / 1000).toFixed(0)} s measured; ${(wholeCpu * 100).toFixed(2)}% over its whole life with startup and teardown, ${end.cpuSeconds.toFixed(2)} s CPU in ${((end.at - samples[0]!.at) / 1000).toFixed(0)} s)`);
    console.log(`supervisor RSS           peak ${peakRssMb.toFixed(1)} MB, mean ${meanRssMb.toFixed(1)} MB`);
    console.log(`writer save time         median ${median(aloneTimes).toFixed(3)} s alone, ${median(supervisedTimes).toFixed(3)} s supervised (${aloneTimes.length} / ${supervisedTimes.length} saves)`);
    console.log(`save -> verified         ${verifyLag.map((s) => s.toFixed(2)).join(", ")} s (includes the 2 s settle time; kept checkpoints only)`);
    console.log(`targets                  CPU < 1%: ${steadyCpu < 0.01 ? "PASS" : "FAIL"}; RSS < 80 MB: ${peakRssMb < 80 ? "PASS" : "FAIL"}; verdicts ${manifest.checkpoints.map((c) => c.verdict).join(", ")}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
