/**
 * Load on one `ckptguard serve`: 200 concurrent SSE clients held open while 2,000 API requests
 * (50 at a time, every endpoint plus the page) are made, with a real `ckptguard run` of
 * examples/train_tiny.py going on so that events flow to every client meanwhile.
 *
 *     npm run build && node dist/bench/serve-load.js [--clients 200] [--requests 2000] [--concurrency 50]
 *
 * The server runs as its own process (the CLI), so its RSS (/proc/<pid>/status VmRSS, VmHWM) is
 * its own and the load generator does not share its event loop. Prints latency percentiles per
 * route and overall, RSS before/during/after, and how many clients saw each live update; writes
 * the same as Markdown to bench/serve-load.md.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { cpus } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, ROOT } from "./bench-paths.js";


const EXAMPLE = join(ROOT, "examples/train_tiny.py");
const WORK = join(ROOT, "bench/tmp/serve-load");

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name}: expected a whole number > 0`);
  return value;
}

const CLIENTS = flag("clients", 200);
const REQUESTS = flag("requests", 2_000);
const CONCURRENCY = flag("concurrency", 50);
const SEQUENTIAL = 500;

function runArgs(dir: string, epochs: number, sleep: number): string[] {
  return [CLI, "run", "--dir", dir, "--settle", "200ms", "--poll", "200ms", "--heartbeat", "500ms", "--progress-interval", "1s", "--total-epochs", String(epochs),
    "--quiet", "--", PYTHON, EXAMPLE, "--out", dir, "--epochs", String(epochs), "--resume", "{resume}", "--sleep", String(sleep)];
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface SseClient {
  updates: number;
  connectedMs: number;
  close(): void;
}

function openSse(base: string, onRun: () => void): Promise<SseClient> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const client: SseClient = { updates: 0, connectedMs: 0, close: () => req.destroy() };
    const req = request(`${base}api/events`, { agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE: HTTP ${res.statusCode}`));
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.includes("event: runs") && client.connectedMs === 0) {
            client.connectedMs = performance.now() - started;
            resolve(client);
          }
          if (block.includes("event: run\n")) {
            client.updates++;
            onRun();
          }
        }
      });
      res.on("error", () => undefined);
    });
    req.on("error", reject);
    req.end();
  });
}

function timedGet(agent: Agent, url: string): Promise<{ ms: number; status: number; bytes: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(url, { agent }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => { bytes += c.length; });
      res.on("end", () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0, bytes }));
    });
    req.on("error", () => resolve({ ms: performance.now() - started, status: 0, bytes: 0 }));
    req.end();
  });
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  process.stderr.write("bench: a finished run (train_tiny, 5 epochs)...\n");
  const finished = spawn(process.execPath, runArgs(join(WORK, "finished"), 5, 0), { stdio: "ignore" });
  if ((await exited(finished)) !== 0) throw new Error("the finished run failed");

  const server = spawn(process.execPath, [CLI, "serve", WORK, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const base = await new Promise<string>((resolve, reject) => {
    let out = "";
    server.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const url = /http:\/\/[^ ]+\//.exec(out)?.[0];
      if (url) resolve(url);
    });
    server.once("exit", () => reject(new Error(`serve exited: ${out}`)));
  });
  const serverPid = server.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const idle = await rssOf(serverPid);

  process.stderr.write(`bench: ${CLIENTS} SSE clients on ${base}...\n`);
  let liveUpdatesDelivered = 0;
  const sseStart = performance.now();
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => openSse(base, () => { liveUpdatesDelivered++; })));
  const sseConnectMs = performance.now() - sseStart;
  const withClients = await rssOf(serverPid);

  process.stderr.write("bench: a live run while the API is loaded...\n");
  const liveDir = join(WORK, "live");
  const live = spawn(process.execPath, runArgs(liveDir, 40, 0.2), { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 3_000)); // its first saves, so the API has a live run to serve

  const { json } = await fetch(`${base}api/runs`).then(async (r) => ({ json: (await r.json()) as { runs: Array<{ id: string; name: string }> } }));
  const ids = json.runs.map((r) => r.id);
  const routes: Array<[label: string, path: (id: string) => string]> = [
    ["GET /api/runs", () => "api/runs"],
    ["GET /api/runs/:id", (id) => `api/runs/${id}`],
    ["GET /api/runs/:id/log?tail=200", (id) => `api/runs/${id}/log?tail=200`],
    ["GET /api/runs/:id/metrics", (id) => `api/runs/${id}/metrics`],
    ["GET / (page)", () => ""],
  ];
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const samples = new Map<string, number[]>(routes.map(([label]) => [label, []]));
  let failures = 0;
  let next = 0;
  const apiStart = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      const n = next++;
      const [label, path] = routes[n % routes.length]!;
      const result = await timedGet(agent, `${base}${path(ids[n % ids.length]!)}`);
      if (result.status !== 200) failures++;
      samples.get(label)!.push(result.ms);
    }
  }));
  const apiSeconds = (performance.now() - apiStart) / 1000;
  const loaded = await rssOf(serverPid);
  // The same routes one at a time (SSE clients still attached): service time without queueing.
  const sequential: number[] = [];
  for (let n = 0; n < SEQUENTIAL; n++) {
    const [, path] = routes[n % routes.length]!;
    sequential.push((await timedGet(agent, `${base}${path(ids[n % ids.length]!)}`)).ms);
  }
  sequential.sort((a, b) => a - b);
  agent.destroy();

  live.kill("SIGTERM");
  await exited(live);
  await new Promise((r) => setTimeout(r, 1_500));
  const perClient = clients.map((c) => c.updates).sort((a, b) => a - b);
  for (const c of clients) c.close();
  server.kill("SIGTERM");
  const serverCode = await exited(server);

  const all = [...samples.values()].flat().sort((a, b) => a - b);
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
  const ms = (value: number): string => `${value.toFixed(1)} ms`;
  const connect = clients.map((c) => c.connectedMs).sort((a, b) => a - b);
  const lines = [
    `# ckptguard serve under load`,
    ``,
    `${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}; server and load generator on the same machine.`,
    `\`node dist/bench/serve-load.js --clients ${CLIENTS} --requests ${REQUESTS} --concurrency ${CONCURRENCY}\``,
    ``,
    `## ${CLIENTS} SSE clients`,
    ``,
    `- all connected and holding their first \`runs\` event in ${ms(sseConnectMs)} (per client p50 ${ms(percentile(connect, 50))}, p99 ${ms(percentile(connect, 99))})`,
    `- live-run updates per client while loaded: min ${perClient[0]}, median ${percentile(perClient, 50)}, max ${perClient.at(-1)} (${liveUpdatesDelivered} deliveries in all)`,
    ``,
    `## ${REQUESTS} API requests, ${CONCURRENCY} at a time, during the above`,
    ``,
    `| route | n | p50 | p99 | max |`,
    `|---|---|---|---|---|`,
    ...[...samples].map(([label, values]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return `| ${label} | ${sorted.length} | ${ms(percentile(sorted, 50))} | ${ms(percentile(sorted, 99))} | ${ms(sorted.at(-1) ?? NaN)} |`;
    }),
    `| **all** | ${all.length} | ${ms(percentile(all, 50))} | ${ms(percentile(all, 99))} | ${ms(all.at(-1) ?? NaN)} |`,
    ``,
    `${(REQUESTS / apiSeconds).toFixed(0)} requests/s; ${failures} non-200 answers; the server exited with ${serverCode} on SIGTERM.`,
    `One request at a time instead (${SEQUENTIAL} requests over the same routes, the SSE clients still attached): p50 ${ms(percentile(sequential, 50))}, p99 ${ms(percentile(sequential, 99))}.`,
    ``,
    `## Server RSS`,
    ``,
    `| when | RSS |`,
    `|---|---|`,
    `| idle, 2 runs known | ${mb(idle.rss)} |`,
    `| ${CLIENTS} SSE clients connected | ${mb(withClients.rss)} |`,
    `| after the ${REQUESTS} requests | ${mb(loaded.rss)} |`,
    `| peak (VmHWM) | ${mb(loaded.hwm)} |`,
    ``,
  ];
  const report = lines.join("\n");
  process.stdout.write(`${report}\n`);
  await writeFile(join(ROOT, "bench/serve-load.md"), report);
  await rm(WORK, { recursive: true, force: true });
  if (failures > 0 || perClient[0] === 0) process.exitCode = 1;
}

await main();
