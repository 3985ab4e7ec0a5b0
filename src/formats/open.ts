import { stat } from "node:fs/promises";
import { CkptError } from "../errors.js";
import { FileSource } from "./file-source.js";
import type { CheckpointModel } from "./model.js";
import { readTorchZip, type ReadOptions } from "./torch.js";

/**
 * Opens one checkpoint file and dispatches on its first bytes (never on its extension:
 * `.pt`, `.bin` and `.ckpt` are all used for every layout).
 */
export async function readCheckpoint(path: string, options: ReadOptions): Promise<CheckpointModel> {
  const size = await regularFileSize(path);
  if (size === 0) throw new CkptError("EMPTY_FILE", "file is empty (0 bytes)", { file: path });
  const source = await openSource(path, size);
  try {
    return await readSource(source, options);
  } catch (error) {
    if (error instanceof CkptError && error.where.file === undefined) {
      throw new CkptError(error.code, error.message, { ...error.where, file: path }, { cause: error });
    }
    throw error;
  } finally {
    await source.close();
  }
}

/**
 * Reads the checkpoint a source holds, dispatching on its first bytes: a whole file, or a
 * window of one (a torch.save stream inside a torch.distributed.checkpoint `.distcp` file).
 */
export async function readSource(source: FileSource, options: ReadOptions): Promise<CheckpointModel> {
  const head = await source.read(0, Math.min(16, source.size), "file signature");
  if (head[0] === 0x50 && head[1] === 0x4b) return await readTorchZip(source, options); // "PK": zip
  // The other readers load on demand: nearly every checkpoint is a torch zip, and start-up counts for inspect.
  const { looksLikeSafetensors, readSafetensors } = await import("./safetensors.js");
  if (looksLikeSafetensors(head, source.size)) return await readSafetensors(source);
  if (head[0] === 0x80 && (head[1] ?? 99) <= 5) return await (await import("./legacy.js")).readTorchLegacy(source); // PROTO opcode
  throw new CkptError("NOT_A_CHECKPOINT", "not a torch zip, legacy torch or safetensors file (unknown signature)", { file: source.path });
}

/** Size of a regular file; anything else (missing, directory, FIFO, device) is a clear error before open(). */
export async function regularFileSize(path: string): Promise<number> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw fsError(error, path);
  }
  if (info.isDirectory()) throw new CkptError("IS_A_DIRECTORY", "is a directory, not a checkpoint file", { file: path });
  if (!info.isFile()) throw new CkptError("NOT_A_FILE", "is not a regular file (FIFO, socket or device)", { file: path });
  return info.size;
}

async function openSource(path: string, size: number): Promise<FileSource> {
  try {
    return await FileSource.open(path, size);
  } catch (error) {
    throw fsError(error, path);
  }
}

export function fsError(error: unknown, path: string): CkptError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return new CkptError("NOT_FOUND", "no such file or directory", { file: path }, { cause: error });
  if (code === "EACCES" || code === "EPERM") return new CkptError("PERMISSION_DENIED", "permission denied", { file: path }, { cause: error });
  if (code === "EISDIR") return new CkptError("IS_A_DIRECTORY", "is a directory, not a checkpoint file", { file: path }, { cause: error });
  return new CkptError("UNREADABLE", `cannot read: ${(error as Error).message}`, { file: path }, { cause: error });
}
