/**
 * Helpers for the dashboard tests: run directories made by a real `ckptguard run` of
 * examples/train_tiny.py, HTTP as a client sees it (fetch, raw sockets that skip client-side
 * URL normalisation, an SSE reader).
 */
import { request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { REPO_ROOT, runCli, TORCH_PYTHON, type ProcessResult } from "./torch.js";
import { startCli, waitFor, readJsonIfPresent, killGroupQuietly, type RunningCli } from "./supervised.js";

export const TRAIN_TINY = join(REPO_ROOT, "examples/train_tiny.py");

/**
 * `ckptguard run` of train_tiny with timings short enough for tests (an epoch takes well under
 * a second plus `--sleep`); `extra` goes to ckptguard, `scriptArgs` to the script.
 */
export function trainTinyRunArgs(dir: string, epochs: number, extra: string[] = [], scriptArgs: string[] = []): string[] {
  return [
    "run", "--dir", dir, "--settle", "200ms", "--poll", "200ms", "--heartbeat", "300ms", "--progress-interval", "500ms",
    "--backoff", "100ms", "--total-epochs", String(epochs), "--quiet", ...extra,
    "--", TORCH_PYTHON, TRAIN_TINY, "--out", dir, "--epochs", String(epochs), "--resume", "{resume}", ...scriptArgs,
  ];
}

export async function finishedRun(dir: string, epochs: number, extra: string[] = []): Promise<ProcessResult> {
  const result = await runCli(trainTinyRunArgs(dir, epochs, extra), { timeoutMs: 90_000 });
  if (result.code !== 0) throw new Error(`ckptguard run exited with ${result.code ?? result.signal}:\n${result.stderr}`);
  return result;
}

export function liveRun(dir: string, epochs: number, extra: string[] = [], scriptArgs: string[] = []): RunningCli {
  return startCli(trainTinyRunArgs(dir, epochs, extra, scriptArgs));
}

/** The run's manifest.json once it lists at least `count` checkpoints. */
export async function waitForCheckpoints(dir: string, count: number, timeoutMs = 40_000): Promise<any> {
  return waitFor(`${count} checkpoint(s) in ${dir}`, async () => {
    const manifest = await readJsonIfPresent(join(dir, ".ckptguard/manifest.json")).catch(() => undefined);
    return manifest !== undefined && manifest.checkpoints.length >= count ? manifest : undefined;
  }, timeoutMs, 50);
}

/** Stops a supervisor and whatever it runs (SIGTERM, then SIGKILL of both groups). */
export async function stopRun(cli: RunningCli, dir: string): Promise<void> {
  const progress = await readJsonIfPresent(join(dir, ".ckptguard/progress.json")).catch(() => undefined);
  cli.child.kill("SIGTERM");
  const timer = setTimeout(() => {
    cli.child.kill("SIGKILL");
    killGroupQuietly(progress?.child_pid);
  }, 5_000);
  await cli.exited;
  clearTimeout(timer);
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET (or other method) through node:http, so any header can be sent. */
export function httpRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const result = await httpRequest(url, { headers });
  return { status: result.status, json: JSON.parse(result.body) };
}

/**
 * Bytes written as they are to a socket (no client normalises `..` or encodings), the whole
 * answer read until the server closes or `timeoutMs` passes. `status` is 0 when there was none.
 */
export function rawHttp(port: number, text: string | Buffer, timeoutMs = 3_000): Promise<{ status: number; response: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const response = Buffer.concat(chunks).toString("utf8");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0), response });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", finish);
    socket.on("error", finish);
    socket.on("connect", () => socket.write(text));
  });
}

export interface SseEvent {
  event: string;
  data: any;
  /** Date.now() when it arrived. */
  at: number;
}

export interface SseReader {
  events: SseEvent[];
  status: Promise<number>;
  close(): void;
}

/** Reads `url` as an event stream, parsing each event as it arrives. */
export function readEvents(url: string, headers: Record<string, string> = {}): SseReader {
  const events: SseEvent[] = [];
  let resolveStatus: (status: number) => void = () => undefined;
  const status = new Promise<number>((resolve) => { resolveStatus = resolve; });
  const req = request(url, { headers: { Accept: "text/event-stream", ...headers }, agent: false }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    let buffer = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data), at: Date.now() });
      }
    });
    res.on("error", () => undefined);
  });
  req.on("error", () => resolveStatus(0));
  req.end();
  return { events, status, close: () => req.destroy() };
}
