import { backoffDelay } from "../restart.js";

/**
 * Which units go to which worker, and when: the multi-worker mode's rules with no I/O and no
 * timers (the caller passes the time), so they are tested without processes or sleeps.
 *
 * - A unit is `pending` until handed out, `running` while a launch holds it, `done` for good
 *   once its marker verified after that launch, and `failed` once its retries are used up.
 * - A failed attempt puts the unit back to pending, not before `backoffDelay(failures)`; it
 *   goes to a different worker slot when one is free (the failure may be the slot's: a bad
 *   GPU, a full local disk).
 * - Ordered units (stages) are handed out one at a time, each after the one before is done.
 */

export type UnitState = "pending" | "running" | "done" | "failed";

export interface SchedulerOptions {
  ordered: boolean;
  batch: number;
  maxRetries: number;
  backoffMs: number;
  backoffMaxMs: number;
}

export interface Assignment {
  worker: number;
  units: string[];
  /** 1 for a first try of these units, 2 for their first retry, ... (the highest among them). */
  attempt: number;
}

export interface UnitCounts {
  total: number;
  done: number;
  pending: number;
  running: number;
  failed: number;
}

interface UnitRecord {
  name: string;
  state: UnitState;
  failures: number;
  /** The worker slot of the last failed attempt. */
  lastWorker: number | undefined;
  /** Not handed out again before this time (backoff). */
  notBefore: number;
}

export class UnitScheduler {
  private readonly units: UnitRecord[];
  private readonly byName = new Map<string, UnitRecord>();

  constructor(names: readonly string[], private readonly options: SchedulerOptions, done: Iterable<string> = []) {
    const finished = new Set(done);
    this.units = names.map((name) => ({ name, state: finished.has(name) ? "done" : "pending", failures: 0, lastWorker: undefined, notBefore: 0 }));
    for (const unit of this.units) this.byName.set(unit.name, unit);
  }

  /** Hands ready units to the free workers (in the order given); the units returned are now `running`. */
  assign(freeWorkers: readonly number[], now: number): Assignment[] {
    if (this.options.ordered) return this.assignNextStage(freeWorkers, now);
    const assignments: Assignment[] = [];
    const free = [...freeWorkers];
    while (free.length > 0) {
      const worker = free.shift()!;
      const ready = this.units.filter((u) => u.state === "pending" && u.notBefore <= now);
      if (ready.length === 0) break;
      // A unit that just failed on this slot waits for another slot, unless no other is free.
      const elsewhere = ready.filter((u) => u.lastWorker !== worker);
      const picked = (elsewhere.length > 0 || free.length > 0 ? elsewhere : ready).slice(0, this.options.batch);
      if (picked.length === 0) continue;
      assignments.push(this.start(worker, picked));
    }
    return assignments;
  }

  private assignNextStage(freeWorkers: readonly number[], now: number): Assignment[] {
    if (this.units.some((u) => u.state === "running" || u.state === "failed")) return [];
    const next = this.units.find((u) => u.state !== "done");
    if (next === undefined || next.notBefore > now || freeWorkers.length === 0) return [];
    const worker = freeWorkers.find((w) => w !== next.lastWorker) ?? freeWorkers[0]!;
    return [this.start(worker, [next])];
  }

  private start(worker: number, units: UnitRecord[]): Assignment {
    for (const unit of units) unit.state = "running";
    return { worker, units: units.map((u) => u.name), attempt: Math.max(...units.map((u) => u.failures)) + 1 };
  }

  /** The unit's marker verified: done for good, never handed out again. */
  finished(name: string): void {
    this.record(name).state = "done";
  }

  /** An attempt that did not finish the unit: `retry` (pending again after the backoff) or `gave-up`. */
  failed(name: string, worker: number, now: number): "retry" | "gave-up" {
    const unit = this.record(name);
    unit.failures++;
    unit.lastWorker = worker;
    if (unit.failures > this.options.maxRetries) {
      unit.state = "failed";
      return "gave-up";
    }
    unit.state = "pending";
    unit.notBefore = now + this.retryDelay(name);
    return "retry";
  }

  /** How long a retry of the unit waits after its latest failure. */
  retryDelay(name: string): number {
    return backoffDelay(this.record(name).failures, this.options.backoffMs, this.options.backoffMaxMs);
  }

  /** A unit sent back without counting an attempt (its launch was stopped on purpose). */
  release(name: string): void {
    const unit = this.record(name);
    if (unit.state === "running") unit.state = "pending";
  }

  /** When the next pending unit becomes ready, if it is not ready now. */
  nextReadyAt(now: number): number | undefined {
    const waiting = this.units.filter((u) => u.state === "pending" && u.notBefore > now).map((u) => u.notBefore);
    return waiting.length === 0 ? undefined : Math.min(...waiting);
  }

  stateOf(name: string): UnitState {
    return this.record(name).state;
  }

  failuresOf(name: string): number {
    return this.record(name).failures;
  }

  get complete(): boolean {
    return this.units.every((u) => u.state === "done");
  }

  /** Units whose retries are used up. */
  get givenUp(): string[] {
    return this.units.filter((u) => u.state === "failed").map((u) => u.name);
  }

  /** Nothing left to hand out: every unit is done, running or given up. */
  get drained(): boolean {
    return !this.units.some((u) => u.state === "pending");
  }

  counts(): UnitCounts {
    const counts: UnitCounts = { total: this.units.length, done: 0, pending: 0, running: 0, failed: 0 };
    for (const unit of this.units) counts[unit.state]++;
    return counts;
  }

  private record(name: string): UnitRecord {
    const unit = this.byName.get(name);
    if (unit === undefined) throw new Error(`unknown unit ${JSON.stringify(name)}`);
    return unit;
  }
}
