import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { CkptError } from "../errors.js";
import { createRequestHandler } from "./app.js";
import { Auth, isLoopbackHost } from "./auth.js";
import { MONITOR_DEFAULTS, RunMonitor } from "./monitor.js";
import { resolveRoots } from "./runs.js";
import { EventStream, SSE_DEFAULTS, type SseOptions } from "./sse.js";
import { loadStaticAssets } from "./static.js";

/**
 * `ckptguard serve` as a library: the dashboard and JSON API for the runs found below `dirs`.
 * node:http with a fixed route table (app.ts): five read-only routes need no framework, and
 * owning the request path keeps every limit (URL length, header size, bodies, timeouts) in
 * one place we can test.
 */

export interface ServeOptions {
  /** Directories searched for runs (default: the current directory). */
  dirs?: readonly string[];
  /** Default 127.0.0.1. Any non-loopback address requires `token`. */
  host?: string;
  /** Default 7117; 0 picks a free port. */
  port?: number;
  /** Required on every request when set (and for non-loopback hosts). */
  token?: string;
  /** Colours last-save ages of runs started without `--max-gap`. */
  maxGapMs?: number;
  /** How often run files are looked at (default 1 s). */
  pollMs?: number;
  /** How often directories are searched for new runs (default 5 s). */
  rediscoverMs?: number;
  sse?: Partial<SseOptions>;
}

export interface RunningServer {
  /** `http://host:port/` as a browser on this machine would open it. */
  url: string;
  host: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export const SERVE_DEFAULTS = { host: "127.0.0.1", port: 7117 } as const;
const MIN_TOKEN_LENGTH = 8;

/** Checks the options once, at the edge; a refusal is a USAGE error naming the option. */
export function checkServeOptions(options: ServeOptions): { host: string; port: number; token: string | undefined } {
  const host = options.host ?? SERVE_DEFAULTS.host;
  const port = options.port ?? SERVE_DEFAULTS.port;
  const token = options.token === "" ? undefined : options.token;
  if (typeof host !== "string" || host === "") throw usage(`--host: expected an address, got ${JSON.stringify(host)} (${typeof host})`);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw usage(`--port: expected a whole number from 0 to 65535, got ${JSON.stringify(port)} (${typeof port})`);
  if (token !== undefined && (token.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token))) {
    throw usage(`--token: expected at least ${MIN_TOKEN_LENGTH} printable characters without spaces, got ${token.length} characters`);
  }
  if (!isLoopbackHost(host) && token === undefined) {
    throw usage(`--host ${host} is not a loopback address: serving it to the network requires --token (or CKPTGUARD_TOKEN)`);
  }
  return { host, port, token };
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const { host, port, token } = checkServeOptions(options);
  const roots = await resolveRoots(options.dirs ?? []);
  const assets = loadStaticAssets();
  const monitor = new RunMonitor({
    roots, pollMs: options.pollMs ?? MONITOR_DEFAULTS.pollMs, refreshMs: MONITOR_DEFAULTS.refreshMs, rediscoverMs: options.rediscoverMs ?? MONITOR_DEFAULTS.rediscoverMs,
    ...(options.maxGapMs !== undefined ? { defaultMaxGapMs: options.maxGapMs } : {}),
  });
  await monitor.start();
  const events = new EventStream(monitor, { ...SSE_DEFAULTS, ...options.sse });
  const server = createServer({ maxHeaderSize: 8 * 1024, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
  const auth = new Auth(token);
  const parts = { monitor, events, auth, assets };
  server.on("request", createRequestHandler(parts));
  server.on("clientError", answerClientError);
  server.on("connect", (_req, socket: Socket) => refuseOnSocket(socket, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED")); // we are no proxy
  try {
    await listen(server, host, port);
  } catch (error) {
    monitor.stop();
    events.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new CkptError("SERVE_FAILED", `cannot listen on ${host}:${port}: ${code === "EADDRINUSE" ? "the port is in use (try --port 0 for a free one)" : (error as Error).message}`, {}, { cause: error });
  }
  const address = server.address();
  const boundPort = typeof address === "object" && address !== null ? address.port : port;
  auth.port = boundPort;
  const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost}:${boundPort}/`, host, port: boundPort, server,
    close: async () => {
      monitor.stop();
      events.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** A request Node's parser rejected (bad syntax, headers over 8 kB, too slow): one JSON answer, then close. */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || error.code === "ECONNRESET") {
    socket.destroy();
    return;
  }
  if (error.code === "HPE_HEADER_OVERFLOW") refuseOnSocket(socket, 431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE");
  else if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") refuseOnSocket(socket, 408, "Request Timeout", "TIMEOUT");
  else refuseOnSocket(socket, 400, "Bad Request", "BAD_REQUEST");
}

function refuseOnSocket(socket: Socket, status: number, reason: string, code: string): void {
  const body = `${JSON.stringify({ error: { code, message: reason } })}\n`;
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function usage(message: string): CkptError {
  return new CkptError("USAGE", `serve ${message}`);
}
