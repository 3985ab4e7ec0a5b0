/**
 * A window of file bytes over a FileSource for readers that walk the file forwards: one
 * big read serves every small member inside it, and an optional second buffer
 * reads the next window on the thread pool while the caller works on the current one.
 * Memory stays at one (or two) buffers however large the file or its members are.
 */
import type { FileSource } from "../file-source.js";

interface PendingRead {
  position: number;
  length: number;
  /** Resolves to the read's error, or undefined; never rejects (so it is never unhandled). */
  outcome: Promise<unknown>;
}

export interface ReadWindowOptions {
  /** Bytes held per buffer. */
  bufferSize: number;
  /** Read the next window ahead into a second buffer of the same size. */
  readAhead?: boolean;
  /** Never read past this file offset unless asked to (defaults to the file size). */
  end?: number;
}

export class ReadWindow {
  private current: Buffer;
  private spare: Buffer | undefined;
  private start = 0;
  private stop = 0;
  private pending: PendingRead | undefined;
  private readonly end: number;

  constructor(private readonly source: FileSource, options: ReadWindowOptions) {
    this.current = Buffer.allocUnsafe(options.bufferSize);
    this.spare = options.readAhead === true ? Buffer.allocUnsafe(options.bufferSize) : undefined;
    this.end = Math.min(options.end ?? source.size, source.size);
  }

  /**
   * Bytes from `position` on, at most `maxLength` and at least one; valid until the next call.
   * The caller has checked that `position` lies inside the file.
   */
  async viewAt(position: number, maxLength: number): Promise<Buffer> {
    if (position < this.start || position >= this.stop) await this.fill(position);
    const from = position - this.start;
    return this.current.subarray(from, Math.min(from + maxLength, this.stop - this.start));
  }

  /** Waits for a read-ahead still in flight, so the file can be closed safely. */
  async settle(): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) await pending.outcome;
  }

  private async fill(position: number): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) {
      const error = await pending.outcome;
      if (error === undefined && pending.position === position && this.spare !== undefined) {
        [this.current, this.spare] = [this.spare, this.current];
        this.setRange(position, pending.length);
        return;
      }
    }
    // Past `end` only when asked to; then just what the caller may use of this one buffer.
    const limit = position < this.end ? this.end : this.source.size;
    const length = Math.min(this.current.length, limit - position);
    this.stop = this.start; // the buffer is about to change; nothing in it is valid until the read lands
    await this.source.readInto(this.current, 0, length, position);
    this.setRange(position, length);
  }

  private setRange(position: number, length: number): void {
    this.start = position;
    this.stop = position + length;
    this.startReadAhead();
  }

  private startReadAhead(): void {
    const spare = this.spare;
    const length = Math.min(spare?.length ?? 0, this.end - this.stop);
    if (spare === undefined || length <= 0) return;
    const position = this.stop;
    const outcome = this.source.readInto(spare, 0, length, position).then(() => undefined, (error: unknown) => error ?? new Error("read failed"));
    this.pending = { position, length, outcome };
  }
}
