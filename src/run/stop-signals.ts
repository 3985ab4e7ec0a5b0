/**
 * How a supervised run is stopped from outside: SIGINT (Ctrl-C), SIGTERM (`kill`, systemd,
 * Slurm) and SIGHUP (the terminal went away) all ask it to stop. The first one received is
 * remembered and wakes whatever is waiting; the caller decides what each one does (the
 * supervisor passes the first to the command's process group and kills it on the second).
 */

export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

export class StopSignals {
  /** The first stop signal received, once one was. */
  received: NodeJS.Signals | undefined;
  private readonly listeners = new Map<NodeJS.Signals, () => void>();
  private readonly sleepers = new Set<() => void>();

  /** `react(signal, first)` runs on every stop signal, after `received` is set by the first. */
  constructor(private readonly source: SignalSource, private readonly react: (signal: NodeJS.Signals, first: boolean) => void) {}

  listen(): void {
    for (const signal of STOP_SIGNALS) {
      const listener = (): void => this.receive(signal);
      this.listeners.set(signal, listener);
      this.source.on(signal, listener);
    }
  }

  close(): void {
    for (const [signal, listener] of this.listeners) this.source.off(signal, listener);
    this.listeners.clear();
  }

  /** Waits `ms`, or less when a stop signal arrives (at once when one already has). */
  sleep(ms: number): Promise<void> {
    if (this.received) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  private receive(signal: NodeJS.Signals): void {
    const first = this.received === undefined;
    if (first) this.received = signal;
    this.react(signal, first);
    if (first) for (const wake of [...this.sleepers]) wake();
  }
}
