/**
 * A fixed set of CRC worker threads that many readers share: a sharded checkpoint is many
 * torch.save streams (DCP items, HF shards), each too small to be worth splitting over
 * threads of its own, so each stream's stored members go to the pool as one job and the
 * threads stay busy across streams while the main thread parses the next stream's pickle.
 * Each thread holds one 4 MiB buffer; a job's results are keyed to its members, so the
 * order jobs finish in never shows.
 */
import { Worker } from "node:worker_threads";
import { CkptError } from "../../errors.js";
import type { ZipMember } from "../model.js";
import type { MemberCrc } from "./crc-parallel.js";
import type { CrcRange, RangeCrc } from "./crc-ranges.js";

export interface CrcPoolJob {
  id: number;
  path: string;
  ranges: CrcRange[];
}

export type CrcPoolReply = { id: number; results: RangeCrc[] } | { id: number; error: string };

interface QueuedJob {
  job: CrcPoolJob;
  resolve: (results: RangeCrc[]) => void;
  reject: (error: Error) => void;
}

export class CrcPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, QueuedJob>();
  private readonly queue: QueuedJob[] = [];
  private nextId = 0;
  private closed = false;

  private constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.idle.push(this.startWorker());
  }

  /** Starts `size` threads; call close() when done (they would keep the process alive). */
  static start(size: number): CrcPool {
    if (!Number.isSafeInteger(size) || size < 1) throw new CkptError("USAGE", `CRC pool size must be a positive integer, got ${size}`);
    return new CrcPool(size);
  }

  /**
   * CRC-32 of each member's stored bytes; `base` is where the zip starts in the file (a
   * window of a `.distcp` file; 0 otherwise).
   */
  async crcMembers(path: string, members: readonly ZipMember[], base = 0): Promise<Map<ZipMember, MemberCrc>> {
    const ranges = members.map((m) => ({ dataOffset: base + m.dataOffset, size: m.compressedSize }));
    const results = ranges.length === 0 ? [] : await this.run(path, ranges);
    return new Map(members.map((member, i) => [member, results[i]!]));
  }

  /** Stops every thread; jobs still queued are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const queued of this.queue.splice(0)) queued.reject(new CkptError("UNREADABLE", "CRC pool closed before the job ran", { file: queued.job.path }));
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private run(path: string, ranges: CrcRange[]): Promise<RangeCrc[]> {
    if (this.closed) return Promise.reject(new CkptError("UNREADABLE", "CRC pool is closed", { file: path }));
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, path, ranges }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const queued = this.queue.shift()!;
      this.busy.set(worker, queued);
      worker.postMessage(queued.job);
    }
  }

  private startWorker(): Worker {
    const worker = new Worker(new URL("./crc-pool-worker.js", import.meta.url));
    worker.on("message", (reply: CrcPoolReply) => {
      const queued = this.busy.get(worker);
      this.busy.delete(worker);
      if (!this.closed) this.idle.push(worker);
      if (queued !== undefined) {
        if ("error" in reply) queued.reject(new CkptError("UNREADABLE", `cannot read for CRC: ${reply.error}`, { file: queued.job.path }));
        else queued.resolve(reply.results);
      }
      this.dispatch();
    });
    worker.on("error", (error) => this.lose(worker, error.message));
    worker.on("exit", (code) => {
      if (!this.closed) this.lose(worker, `CRC worker stopped early (exit code ${code})`);
    });
    return worker;
  }

  /** A thread died: its job fails, and with no thread left every queued job fails too. */
  private lose(worker: Worker, reason: string): void {
    const queued = this.busy.get(worker);
    this.busy.delete(worker);
    const at = this.idle.indexOf(worker);
    if (at >= 0) this.idle.splice(at, 1);
    queued?.reject(new CkptError("UNREADABLE", `cannot read for CRC: ${reason}`, { file: queued.job.path }));
    if (this.idle.length + this.busy.size === 0) {
      for (const waiting of this.queue.splice(0)) waiting.reject(new CkptError("UNREADABLE", `cannot read for CRC: ${reason}`, { file: waiting.job.path }));
    }
  }
}
