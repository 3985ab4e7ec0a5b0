import { discoverRuns, type DiscoveryLimits, DISCOVERY_DEFAULTS, type KnownRun } from "./runs.js";
import { readRunFacts, summarizeRun, type RunFacts, type RunSummary } from "./run-view.js";
import { stateSignature, type StateFileName } from "./state-file.js";

/**
 * Keeps every known run's summary current by polling its run files cheaply: one lstat per
 * file each `pollMs`, and a re-read only when a size or mtime moved (or every `refreshMs`,
 * since a supervisor that dies or stalls changes no file). Listeners hear about a run only
 * when its summary actually changed. Discovery runs again every `rediscoverMs`.
 */

export interface MonitorOptions {
  roots: readonly string[];
  pollMs: number;
  refreshMs: number;
  rediscoverMs: number;
  /** Colours last-save ages of runs started without --max-gap. */
  defaultMaxGapMs?: number;
  discovery?: DiscoveryLimits;
}

export const MONITOR_DEFAULTS = { pollMs: 1_000, refreshMs: 5_000, rediscoverMs: 5_000 } as const;

export type MonitorChange = { type: "run"; summary: RunSummary } | { type: "removed"; id: string };

/** The heartbeat's mtime moves every few seconds by design; staleness is caught by the refresh instead. */
const WATCHED_FILES: readonly StateFileName[] = ["progress.json", "manifest.json", "run.log", "progress.jsonl"];

interface RunEntry {
  run: KnownRun;
  signature: string;
  facts: RunFacts;
  summary: RunSummary;
  summaryJson: string;
  refreshedAt: number;
  /** Views derived from this version of the files (memo), dropped when they change. */
  views: Map<string, Promise<unknown>>;
}

export class RunMonitor {
  private readonly entries = new Map<string, RunEntry>();
  private readonly listeners = new Set<(change: MonitorChange) => void>();
  private timer: NodeJS.Timeout | undefined;
  private discoveredAt = 0;
  private stopped = false;

  constructor(private readonly options: MonitorOptions) {}

  /** Discovers and summarizes every run once, then keeps polling. */
  async start(): Promise<void> {
    await this.poll();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  summaries(): RunSummary[] {
    return [...this.entries.values()].map((e) => e.summary).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(id: string): { run: KnownRun; facts: RunFacts; summary: RunSummary } | undefined {
    return this.entries.get(id);
  }

  /**
   * `compute()` once per version of the run's files: a hundred clients asking for the same log
   * tail after an event cost one read. Undefined for an unknown run.
   */
  memo<T>(id: string, view: string, compute: (run: KnownRun, facts: RunFacts) => Promise<T>): Promise<T> | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    let value = entry.views.get(view) as Promise<T> | undefined;
    if (value === undefined) {
      value = compute(entry.run, entry.facts);
      entry.views.set(view, value);
      value.catch(() => entry.views.delete(view));
    }
    return value;
  }

  subscribe(listener: (change: MonitorChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One round: rediscover when due, then refresh each run whose files moved. */
  async poll(now = Date.now()): Promise<void> {
    if (now - this.discoveredAt >= this.options.rediscoverMs) await this.rediscover(now);
    for (const entry of [...this.entries.values()]) {
      const signature = await stateSignature(entry.run.stateDir, WATCHED_FILES);
      if (signature === entry.signature && now - entry.refreshedAt < this.options.refreshMs) continue;
      await this.refresh(entry.run, signature, now);
    }
  }

  private async rediscover(now: number): Promise<void> {
    this.discoveredAt = now;
    const found = await discoverRuns(this.options.roots, this.options.discovery ?? DISCOVERY_DEFAULTS);
    const ids = new Set(found.map((r) => r.id));
    for (const id of [...this.entries.keys()]) {
      if (ids.has(id)) continue;
      this.entries.delete(id);
      this.emit({ type: "removed", id });
    }
    for (const run of found) {
      if (!this.entries.has(run.id)) await this.refresh(run, await stateSignature(run.stateDir, WATCHED_FILES), now);
    }
  }

  private async refresh(run: KnownRun, signature: string, now: number): Promise<void> {
    const facts = await readRunFacts(run);
    const summary = await summarizeRun(run, facts, { now, ...(this.options.defaultMaxGapMs !== undefined ? { defaultMaxGapMs: this.options.defaultMaxGapMs } : {}) });
    const summaryJson = JSON.stringify(summary);
    const previous = this.entries.get(run.id);
    const views = previous?.signature === signature ? previous.views : new Map<string, Promise<unknown>>();
    this.entries.set(run.id, { run, signature, facts, summary, summaryJson, refreshedAt: now, views });
    if (previous?.summaryJson !== summaryJson) this.emit({ type: "run", summary });
  }

  private emit(change: MonitorChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure (a client gone mid-write) is its own business.
      }
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.poll().catch(() => undefined).finally(() => this.schedule());
    }, this.options.pollMs);
    this.timer.unref();
  }
}
