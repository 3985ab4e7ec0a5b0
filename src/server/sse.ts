import type { IncomingMessage, ServerResponse } from "node:http";
import type { MonitorChange, RunMonitor } from "./monitor.js";

/**
 * `GET /api/events`: Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 * On connect: `event: runs` with every summary. Then `event: run` with a run's summary each
 * time it changes, and `event: removed` with `{"id"}` when a run disappears. A comment line
 * every `keepAliveMs` keeps proxies from closing an idle stream. A client that stops reading
 * (more than `maxBufferedBytes` queued) is dropped instead of growing our memory.
 */

export interface SseOptions {
  maxClients: number;
  keepAliveMs: number;
  maxBufferedBytes: number;
}

export const SSE_DEFAULTS: SseOptions = { maxClients: 1_000, keepAliveMs: 15_000, maxBufferedBytes: 1024 * 1024 };

export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private readonly unsubscribe: () => void;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(private readonly monitor: RunMonitor, private readonly options: SseOptions = SSE_DEFAULTS) {
    this.unsubscribe = monitor.subscribe((change) => this.broadcast(change));
    this.keepAlive = setInterval(() => this.send(": keep-alive\n\n"), options.keepAliveMs);
    this.keepAlive.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes over the response; false when the server already streams to maxClients. */
  accept(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): boolean {
    if (this.clients.size >= this.options.maxClients) return false;
    res.writeHead(200, { ...headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no" });
    res.socket?.setNoDelay(true);
    res.socket?.setTimeout(0); // an event stream is idle by nature
    this.clients.add(res);
    const drop = (): void => {
      this.clients.delete(res);
    };
    req.on("close", drop);
    res.on("error", drop);
    res.write(`retry: 2000\n${frame("runs", { now: Date.now(), runs: this.monitor.summaries() })}`);
    return true;
  }

  close(): void {
    this.unsubscribe();
    clearInterval(this.keepAlive);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private broadcast(change: MonitorChange): void {
    const text = change.type === "run" ? frame("run", { now: Date.now(), run: change.summary }) : frame("removed", { id: change.id });
    this.send(text);
  }

  private send(text: string): void {
    for (const res of this.clients) {
      if (res.writableLength > this.options.maxBufferedBytes) {
        this.clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}

/** One event; JSON.stringify never emits a raw newline, so `data:` is one line. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
