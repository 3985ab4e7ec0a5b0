/**
 * Times `ckptguard verify --deep` against plain `verify` (the NaN/Inf scan's cost over the CRC
 * pass), on the GPT-2-small + AdamW checkpoint (~1.5 GB, ISSUE 5's budget: within 2x) and on a
 * 200 MB file holding one float32 tensor. Warm page cache, median of 5 runs each.
 *
 *     npm run build && node dist/bench/verify-deep.js
 *
 * Needs bench/tmp/gpt2.pt (`npm run bench` writes it); writes bench/tmp/f32-200mb.pt with torch.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const RUNS = 5;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/src/cli/main.js");

function medianSeconds(args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, [CLI, "verify", ...args], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`verify ${args.join(" ")} exited ${result.status}: ${result.stdout}${result.stderr}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
}

function bench(label: string, file: string, bytes: number): void {
  medianSeconds([file]); // warm the page cache
  const plain = medianSeconds([file]);
  const deep = medianSeconds(["--deep", file]);
  const gbps = (s: number) => (bytes / s / 1e9).toFixed(2);
  console.log(`${label}: verify ${plain.toFixed(3)} s (${gbps(plain)} GB/s), verify --deep ${deep.toFixed(3)} s (${gbps(deep)} GB/s), ratio ${(deep / plain).toFixed(2)}x`);
}

const small = join(ROOT, "bench/tmp/f32-200mb.pt");
if (!existsSync(small)) {
  execFileSync("/usr/bin/python3", ["-c", `import torch; torch.manual_seed(0); torch.save({"w": torch.randn(50_000_000)}, ${JSON.stringify(small)})`]);
}
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} (figures are noisy above ~1)`);
bench("200 MB float32", small, 200e6);
const gpt2 = join(ROOT, "bench/tmp/gpt2.pt");
if (existsSync(gpt2)) bench("GPT-2 + AdamW 1.5 GB", gpt2, 1.49e9);
else console.log("bench/tmp/gpt2.pt missing: run `npm run bench` once to write it");
