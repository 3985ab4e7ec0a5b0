import { stat } from "node:fs/promises";
import { CkptError } from "../errors.js";

/**
 * The run directory a marker command works in must exist: a typo would otherwise report every
 * unit pending (`units`) or quietly create a new tree of markers (`mark-done`).
 */
export async function requireExistingDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (info === undefined) throw new CkptError("NOT_FOUND", "run directory does not exist", { file: dir });
  if (!info.isDirectory()) throw new CkptError("NOT_A_DIRECTORY", "expected the run directory, found a file", { file: dir });
}
