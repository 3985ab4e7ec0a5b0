import { closeSync, existsSync, fstatSync, openSync, renameSync, writeSync } from "node:fs";

/**
 * `run.log`: the child's stdout and stderr and the supervisor's own lines, in the order
 * they arrived. Append-only (the one file not written through the atomic helper: a log
 * is appended to, never replaced). When it grows past `maxBytes` it becomes `run.log.1`,
 * `.1` becomes `.2`, and so on up to `keep` old files.
 *
 * Writes are synchronous: appends to the page cache take microseconds, keep lines in
 * order across the two pipes, and leave nothing buffered in our memory when we are killed.
 */
export class RotatingLog {
  private fd: number;
  private written: number;

  constructor(readonly path: string, readonly maxBytes: number, readonly keep: number) {
    this.fd = openSync(path, "a", 0o644);
    this.written = fstatSync(this.fd).size;
  }

  write(chunk: string | Uint8Array): void {
    if (this.fd < 0) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (this.written > 0 && this.written + bytes.length > this.maxBytes) this.rotate();
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(this.fd, bytes, offset);
    this.written += bytes.length;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private rotate(): void {
    closeSync(this.fd);
    for (let i = this.keep - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (this.keep >= 1) renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, this.keep >= 1 ? "a" : "w", 0o644);
    this.written = 0;
  }
}
