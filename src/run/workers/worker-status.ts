/**
 * Each worker slot as progress.json (`workers`), `ckptguard status` and the dashboard show it.
 * Kept in memory by the pool; the caller passes the time.
 */

export type WorkerState = "running" | "idle" | "failed" | "done";

export interface WorkerSlotJson {
  /** The slot's index, 0..N-1 (what `{worker}` became). */
  worker: number;
  /** The running launch's pid, else the last launch's (null before the first). */
  pid: number | null;
  /** The units of the running (else the last) launch. */
  units: string[];
  /** `failed`: its last launch left units unfinished; `done`: idle with nothing left to hand out. */
  status: WorkerState;
  /** The attempt the running (else the last) launch made at its units: 1 first try, 2 first retry, ... */
  attempts: number;
  /** When the running (else the last) launch started (ISO 8601), null before the first. */
  started: string | null;
  /** `CUDA_VISIBLE_DEVICES` given to it, null when not pinned. */
  gpu: string | null;
  /** Launches so far, and how many of them left units unfinished. */
  launches: number;
  failures: number;
  /** The running (else the last) launch's argv after substitution. */
  command: string[] | null;
  /** How its last launch ended. */
  last_exit: { code: number | null; signal: string | null; at: string } | null;
}

export class WorkerSlots {
  private readonly slots: WorkerSlotJson[];

  constructor(count: number, gpuOf: (worker: number) => string | undefined) {
    this.slots = Array.from({ length: count }, (_, worker) => ({
      worker, pid: null, units: [], status: "idle", attempts: 0, started: null, gpu: gpuOf(worker) ?? null, launches: 0, failures: 0, command: null, last_exit: null,
    }));
  }

  launched(worker: number, launch: { pid: number; units: readonly string[]; attempt: number; command: readonly string[] }, now: number): void {
    const slot = this.slot(worker);
    Object.assign(slot, { pid: launch.pid, units: [...launch.units], status: "running", attempts: launch.attempt, started: new Date(now).toISOString(), command: [...launch.command] });
    slot.launches++;
  }

  exited(worker: number, exit: { code: number | null; signal: string | null }, allDone: boolean, now: number): void {
    const slot = this.slot(worker);
    slot.status = allDone ? "idle" : "failed";
    if (!allDone) slot.failures++;
    slot.last_exit = { code: exit.code, signal: exit.signal, at: new Date(now).toISOString() };
  }

  /** Slots with no launch running. */
  free(): number[] {
    return this.slots.filter((s) => s.status !== "running").map((s) => s.worker);
  }

  /** Nothing is left to hand out: every idle slot is done (with `everyUnitDone`, a slot whose failure was retried elsewhere too). */
  drained(everyUnitDone = false): void {
    for (const slot of this.slots) if (slot.status === "idle" || (everyUnitDone && slot.status === "failed")) slot.status = "done";
  }

  snapshot(): WorkerSlotJson[] {
    return this.slots.map((s) => ({ ...s, units: [...s.units], command: s.command ? [...s.command] : null }));
  }

  private slot(worker: number): WorkerSlotJson {
    const slot = this.slots[worker];
    if (slot === undefined) throw new Error(`no worker slot ${worker}`);
    return slot;
  }
}
