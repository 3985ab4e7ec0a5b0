import { hostname } from "node:os";
import { CkptError } from "../errors.js";

/**
 * `ckptguard run --notify URL`: a JSON event POSTed to each webhook on crash, restart, stale
 * saves, an invalid checkpoint and the end of the run. Slack-compatible: the body carries a
 * `text` field, which is all a Slack incoming webhook reads (other receivers get the rest).
 *
 * Fire and forget: `send` queues and returns at once, so the supervisor never waits on a
 * webhook. Each URL has its own queue, delivered in order, each event tried once plus
 * `retries` times on a network error, a timeout, 429 or 5xx, with doubling backoff. A
 * queue that overflows drops its oldest events. `flush` is the one bounded wait, at exit.
 */

export type NotifyEventKind = "crash" | "restart" | "stale" | "invalid_checkpoint" | "finish";

export interface NotifyEvent {
  event: NotifyEventKind;
  /** One human sentence; Slack shows this. */
  text: string;
  dir: string;
  host: string;
  at: string;
  /** Event-specific facts (exit code, restart number, verdict and problem codes, outcome). */
  details: Record<string, unknown>;
}

export interface NotifierOptions {
  urls: readonly string[];
  /** Per attempt (default 5 s). */
  timeoutMs?: number;
  /** Attempts after the first (default 3). */
  retries?: number;
  /** Wait before the first retry, doubling after each (default 1 s). */
  backoffMs?: number;
  /** Events waiting per URL before the oldest is dropped (default 100). */
  maxQueue?: number;
  /** Told about each event given up on; never told the full URL (webhook URLs carry secrets). */
  onFailure?: (message: string) => void;
  fetch?: typeof fetch;
}

export const NOTIFY_DEFAULTS = { timeoutMs: 5_000, retries: 3, backoffMs: 1_000, maxQueue: 100 } as const;

/** Throws a USAGE error naming `--notify` unless every URL is http(s). */
export function checkNotifyUrls(urls: readonly unknown[]): string[] {
  return urls.map((url) => {
    let parsed: URL | undefined;
    try {
      parsed = typeof url === "string" ? new URL(url) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      throw new CkptError("USAGE", `--notify: expected an http:// or https:// URL, got ${JSON.stringify(url)} (${typeof url})`);
    }
    return parsed.href;
  });
}

/** The webhook as it may appear in a log: scheme, host and port only. */
export function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}

export class Notifier {
  private readonly queues = new Map<string, NotifyEvent[]>();
  private readonly busy = new Set<string>();
  private readonly settled = new Set<() => void>();
  private readonly controllers = new Set<AbortController>();
  private closed = false;
  private readonly options: Required<Omit<NotifierOptions, "onFailure" | "fetch">> & Pick<NotifierOptions, "onFailure"> & { fetch: typeof fetch };

  constructor(options: NotifierOptions) {
    this.options = { ...NOTIFY_DEFAULTS, ...options, urls: checkNotifyUrls(options.urls), fetch: options.fetch ?? globalThis.fetch };
  }

  /** An event with the common fields filled in. */
  static event(kind: NotifyEventKind, dir: string, text: string, details: Record<string, unknown> = {}, now = Date.now()): NotifyEvent {
    return { event: kind, text: `ckptguard: ${text}`, dir, host: hostname(), at: new Date(now).toISOString(), details };
  }

  /** Queues the event for every URL and returns at once. Never throws. */
  send(event: NotifyEvent): void {
    if (this.closed) return;
    for (const url of this.options.urls) {
      const queue = this.queues.get(url) ?? [];
      queue.push(event);
      if (queue.length > this.options.maxQueue) queue.shift();
      this.queues.set(url, queue);
      if (!this.busy.has(url)) void this.drain(url);
    }
  }

  /** Nothing queued or being sent. */
  get idle(): boolean {
    return this.busy.size === 0;
  }

  /**
   * Waits until every queued event is delivered or given up on, at most `maxWaitMs`; then
   * abandons the rest (pending retries are dropped, requests aborted). For the end of a run.
   */
  async flush(maxWaitMs: number): Promise<void> {
    if (!this.idle) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, maxWaitMs);
        const settled = this.settled;
        function done(): void {
          clearTimeout(timer);
          settled.delete(done);
          resolve();
        }
        settled.add(done);
      });
    }
    this.closed = true;
    for (const controller of this.controllers) controller.abort();
    this.queues.clear();
  }

  private async drain(url: string): Promise<void> {
    this.busy.add(url);
    try {
      for (;;) {
        const event = this.queues.get(url)?.shift();
        if (event === undefined || this.closed) break;
        await this.deliver(url, event);
      }
    } finally {
      this.busy.delete(url);
      if (this.idle) for (const done of [...this.settled]) done();
    }
  }

  private async deliver(url: string, event: NotifyEvent): Promise<void> {
    const body = JSON.stringify(event);
    let lastError = "";
    for (let attempt = 0; attempt <= this.options.retries && !this.closed; attempt++) {
      if (attempt > 0) await this.pause(this.options.backoffMs * 2 ** (attempt - 1));
      if (this.closed) return;
      const controller = new AbortController();
      this.controllers.add(controller);
      const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
      try {
        const response = await this.options.fetch(url, {
          method: "POST", body, signal: controller.signal, redirect: "error",
          headers: { "Content-Type": "application/json", "User-Agent": "ckptguard" },
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
        if (response.status !== 429 && response.status < 500) break; // the receiver refuses this event: retrying will not help
      } catch (error) {
        lastError = controller.signal.aborted ? `no answer within ${this.options.timeoutMs} ms` : ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
      } finally {
        clearTimeout(timer);
        this.controllers.delete(controller);
      }
    }
    if (!this.closed) this.options.onFailure?.(`notify ${redactUrl(url)}: gave up on the ${event.event} event: ${lastError}`);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
  }
}
