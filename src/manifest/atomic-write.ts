import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * The one way ckptguard writes a file: a temp file in the same directory, write, fsync,
 * rename over the target, fsync the directory. A reader (or a crash at any instant)
 * sees either the old content or the new, never a mix (POSIX rename(2) is atomic within
 * a filesystem; the directory fsync makes the rename itself durable).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
}

/** JSON with a trailing newline, written atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** fsync(2) on a directory so a rename or unlink in it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** True for names our writer (and common training code) uses for in-progress files. */
export function isTempName(name: string): boolean {
  return /\.(tmp|temp|partial|part|incomplete)$/i.test(name) || /\.tmp[.-]/i.test(name) || name.startsWith(".");
}
