import type { IncomingMessage, ServerResponse } from "node:http";
import { apiError, listRuns, runDetail, runLog, runMetrics, type ApiResponse } from "./api.js";
import type { Auth } from "./auth.js";
import type { RunMonitor } from "./monitor.js";
import type { EventStream } from "./sse.js";
import { PAGE_CSP, type StaticAsset } from "./static.js";

/**
 * Every request goes through here, in this order: size and method limits, path hygiene,
 * the token, then one route of a fixed table (static assets by exact path, the JSON API,
 * the event stream). Nothing a client sends becomes a file path. A handler that throws
 * answers 500 and the server carries on.
 */

export interface AppParts {
  monitor: RunMonitor;
  events: EventStream;
  auth: Auth;
  assets: ReadonlyMap<string, StaticAsset>;
}

/** Longer request targets are refused (414): ours are all short. */
export const MAX_URL_LENGTH = 2_048;

const SECURITY_HEADERS: Record<string, string> = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Resource-Policy": "same-origin",
};

type Handler = (parts: AppParts, match: RegExpExecArray, url: URL) => ApiResponse | Promise<ApiResponse>;

const ID = "([0-9a-f]{12})";
const API_ROUTES: ReadonlyArray<[RegExp, Handler]> = [
  [/^\/api\/runs$/, (p) => listRuns(p.monitor)],
  [new RegExp(`^/api/runs/${ID}$`), (p, m) => runDetail(p.monitor, m[1]!)],
  [new RegExp(`^/api/runs/${ID}/log$`), (p, m, url) => runLog(p.monitor, m[1]!, url.searchParams)],
  [new RegExp(`^/api/runs/${ID}/metrics$`), (p, m) => runMetrics(p.monitor, m[1]!)],
];

/**
 * `..`, encoded dots, slashes, backslashes and NUL never belong in one of our paths; they are
 * turned away before any parsing could normalise them into something else.
 */
const SUSPICIOUS_PATH = /\.\.|%2e|%2f|%5c|%00|\\|\0/i;

export function createRequestHandler(parts: AppParts): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(parts, req, res).catch((error: unknown) => {
      if (!res.headersSent) send(req, res, apiError(500, "INTERNAL", `internal error: ${(error as Error)?.message ?? String(error)}`));
      else res.destroy();
    });
  };
}

async function handle(parts: AppParts, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = req.url ?? "";
  if (target.length > MAX_URL_LENGTH) return send(req, res, apiError(414, "URI_TOO_LONG", `request target over ${MAX_URL_LENGTH} characters`), { Connection: "close" });
  if (req.method !== "GET" && req.method !== "HEAD") {
    return send(req, res, apiError(405, "METHOD_NOT_ALLOWED", "the dashboard is read-only: GET and HEAD only"), { Allow: "GET, HEAD", Connection: "close" });
  }
  if (hasBody(req)) return send(req, res, apiError(413, "PAYLOAD_TOO_LARGE", "requests carry no body here"), { Connection: "close" });
  const rawPath = target.split("?")[0]!;
  if (!target.startsWith("/") || SUSPICIOUS_PATH.test(rawPath)) return send(req, res, apiError(404, "NOT_FOUND", "no such page"));
  let url: URL;
  try {
    url = new URL(target, "http://dashboard.invalid");
  } catch {
    return send(req, res, apiError(400, "BAD_REQUEST", "malformed request target"));
  }

  const auth = parts.auth.check(req, url);
  if (auth.kind === "deny") return send(req, res, apiError(auth.status, auth.code, auth.message));
  if (auth.kind === "set-cookie") {
    res.writeHead(303, { ...SECURITY_HEADERS, "Set-Cookie": auth.cookie, Location: auth.location, "Cache-Control": "no-store", "Content-Length": "0" });
    res.end();
    return;
  }

  const asset = parts.assets.get(url.pathname);
  if (asset !== undefined) return sendAsset(req, res, asset, url.pathname === "/");
  if (url.pathname === "/api/events") {
    if (!parts.events.accept(req, res, SECURITY_HEADERS)) send(req, res, apiError(503, "TOO_MANY_STREAMS", "too many event streams open"), { "Retry-After": "10" });
    return;
  }
  for (const [pattern, handler] of API_ROUTES) {
    const match = pattern.exec(url.pathname);
    if (match) return send(req, res, await handler(parts, match, url));
  }
  send(req, res, apiError(404, "NOT_FOUND", "no such page"));
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

function send(req: IncomingMessage, res: ServerResponse, response: ApiResponse, headers: Record<string, string> = {}): void {
  const body = `${JSON.stringify(response.body)}\n`;
  res.writeHead(response.status, {
    ...SECURITY_HEADERS, ...headers, "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function sendAsset(req: IncomingMessage, res: ServerResponse, asset: StaticAsset, isPage: boolean): void {
  const headers: Record<string, string> = { ...SECURITY_HEADERS, "Content-Type": asset.type, ETag: asset.etag, "Cache-Control": "no-cache", ...(isPage ? { "Content-Security-Policy": PAGE_CSP } : {}) };
  if (req.headers["if-none-match"] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, "Content-Length": String(asset.body.length) });
  res.end(req.method === "HEAD" ? undefined : asset.body);
}
