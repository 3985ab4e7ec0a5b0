import { watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { readCatalogEntry, type CatalogEntry } from "../catalog/entry.js";
import { qualificationRules } from "../catalog/rules.js";
import { scanCheckpoints, type CheckpointCandidate } from "../catalog/scan.js";
import { isTempName } from "../manifest/atomic-write.js";
import { sha256File } from "../manifest/file-hash.js";
import { verifyFile } from "../verify/verify-file.js";

/**
 * Notices checkpoints appearing or changing in the run directory and verifies each one
 * once it has settled (size and mtime unchanged for `settleMs`, name not a temp name): what
 * `verify` checks (every byte CRC-checked, pickle safety, tensor bounds) plus complete as a
 * training checkpoint. The NaN/Inf scan of every float tensor costs 8 times the CRC pass
 * (~2.5 ms of CPU per MB against ~0.3), so it runs only with `deep`; resuming always gets
 * the catalog's full check, NaN scan included, so a NaN checkpoint is never resumed from.
 *
 * Listing reuses the catalog's scan (readdir plus a stat per checkpoint-looking file), so a
 * poll costs microseconds per file; inotify (fs.watch) makes a save be noticed at once, and
 * the poll catches what inotify cannot see (network file systems, subdirectories). Files
 * are verified one at a time, asynchronously: the training child never waits on us.
 */

export interface WatcherOptions {
  dir: string;
  settleMs: number;
  pollMs: number;
  /** Also hash every verified file (SHA-256) for the manifest. */
  hash: boolean;
  /** Also scan every float tensor for NaN/Inf. */
  deep: boolean;
  now: () => number;
  /** A version of a file was verified (valid or not). */
  onVerified: (entry: CatalogEntry, sha256: string | undefined) => void | Promise<void>;
  /** A file known before is gone. */
  onGone: (path: string) => void | Promise<void>;
  /** Scanning the directory itself failed (it was removed, permissions changed). */
  onError: (error: unknown) => void;
}

interface Observation {
  size: number;
  mtimeMs: number;
  /** When this size and mtime were first seen. */
  since: number;
  /** Verified (or queued for verification) at this size and mtime. */
  done: boolean;
}

/** inotify events during a save come in thousands; one scan this long after the first is enough. */
const EVENT_DEBOUNCE_MS = 250;

export class CheckpointWatcher {
  private readonly seen = new Map<string, Observation>();
  private verifying: Promise<void> = Promise.resolve();
  private fsWatcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private readonly rules = qualificationRules({});

  constructor(private readonly options: WatcherOptions) {}

  /** Files already verified (from the manifest): not verified again while unchanged. */
  remember(known: Iterable<{ path: string; size: number; mtime: number }>): void {
    for (const k of known) this.seen.set(k.path, { size: k.size, mtimeMs: k.mtime, since: 0, done: true });
  }

  start(): void {
    this.pollTimer = setInterval(() => void this.scan(), this.options.pollMs);
    try {
      this.fsWatcher = watch(this.options.dir, { persistent: false }, (event, name) => {
        // A temp file growing says nothing new; its rename to the final name is what counts.
        if (event === "change" && typeof name === "string" && isTempName(name)) return;
        this.scanSoon(EVENT_DEBOUNCE_MS);
      });
      this.fsWatcher.on("error", () => this.fsWatcher?.close());
    } catch {
      // No inotify (or out of watches): the poll alone still finds everything.
    }
  }

  stop(): void {
    clearInterval(this.pollTimer);
    clearTimeout(this.soonTimer);
    this.fsWatcher?.close();
  }

  /** Scans now; with `settled`, every file counts as settled (its writer is known to be dead). */
  async scan(settled = false): Promise<void> {
    while (this.scanning) await this.scanning;
    this.scanning = this.scanOnce(settled).catch((error) => this.options.onError(error));
    try {
      await this.scanning;
    } finally {
      this.scanning = undefined;
    }
  }

  /** Everything present is scanned and verified: call after the child exited, before choosing a resume. */
  async flush(): Promise<void> {
    await this.scan(true);
    await this.flushQueue();
  }

  /** Waits for the verifications already queued. */
  async flushQueue(): Promise<void> {
    await this.verifying;
  }

  private async scanOnce(settled: boolean): Promise<void> {
    const candidates = await scanCheckpoints(this.options.dir);
    const now = this.options.now();
    const present = new Set<string>();
    let unsettled = Infinity;
    for (const candidate of candidates) {
      if (candidate.inProgress) continue; // a temp name: never verified, never used
      present.add(candidate.path);
      const known = this.seen.get(candidate.path);
      if (known === undefined || known.size !== candidate.size || known.mtimeMs !== candidate.mtimeMs) {
        this.seen.set(candidate.path, { size: candidate.size, mtimeMs: candidate.mtimeMs, since: now, done: false });
        if (!settled) {
          unsettled = Math.min(unsettled, this.options.settleMs);
          continue;
        }
      }
      const observation = this.seen.get(candidate.path)!;
      if (observation.done) continue;
      const waited = now - observation.since;
      if (!settled && waited < this.options.settleMs) {
        unsettled = Math.min(unsettled, this.options.settleMs - waited);
        continue;
      }
      observation.done = true;
      this.enqueue(candidate);
    }
    for (const path of [...this.seen.keys()]) {
      if (present.has(path)) continue;
      this.seen.delete(path);
      await this.options.onGone(path);
    }
    if (unsettled !== Infinity) this.scanSoon(unsettled + 10);
  }

  private enqueue(candidate: CheckpointCandidate): void {
    this.verifying = this.verifying.then(() => this.verify(candidate)).catch((error) => this.options.onError(error));
  }

  private async verify(candidate: CheckpointCandidate): Promise<void> {
    const entry = await this.check(candidate);
    const sha256 = this.options.hash && candidate.kind === "file" && entry.verdict === "valid" ? await sha256File(candidate.path).catch(() => undefined) : undefined;
    if (!(await unchanged(candidate))) {
      // Written over while we read it: look again once it settles.
      const observation = this.seen.get(candidate.path);
      if (observation) observation.done = false;
      this.scanSoon(this.options.settleMs);
      return;
    }
    await this.options.onVerified(entry, sha256);
  }

  /** The catalog's entry (position, metrics) with the verdict of a CRC pass, or of the full check with `deep`. */
  private async check(candidate: CheckpointCandidate): Promise<CatalogEntry> {
    if (this.options.deep || candidate.kind !== "file") return (await readCatalogEntry(candidate, { check: "full", ...this.rules })).entry;
    const { entry } = await readCatalogEntry(candidate, { check: "structure", ...this.rules });
    if (entry.verdict === "valid") {
      const { report } = await verifyFile(candidate.path, { checkCrc: true }, this.rules.rules);
      return { ...entry, verdict: report.verdict, problems: report.problems };
    }
    return entry;
  }

  private scanSoon(delayMs: number): void {
    if (this.soonTimer !== undefined) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      void this.scan();
    }, delayMs);
    this.soonTimer.unref();
  }
}

async function unchanged(candidate: CheckpointCandidate): Promise<boolean> {
  if (candidate.kind !== "file") return true;
  const info = await stat(candidate.path).catch(() => undefined);
  return info !== undefined && info.size === candidate.size && info.mtimeMs === candidate.mtimeMs;
}
