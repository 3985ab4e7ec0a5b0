import { constants } from "node:fs";
import { access, mkdir, readdir, stat, statfs, unlink } from "node:fs/promises";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { scanCheckpoints } from "../catalog/scan.js";
import { formatBytes } from "../cli/style.js";
import { CkptError } from "../errors.js";
import { syncDirectory, writeFileAtomic } from "../manifest/atomic-write.js";
import { isAlive } from "./child.js";
import { FINISHED_STATES } from "./progress.js";
import { readPidFile, readProgress, runFiles } from "./run-files.js";

/**
 * What must hold before a training run is started, so that it does not fail hours later
 * for a reason visible now: the checkpoint directory can be created and written (a probe
 * file is written, fsynced and removed), there is room for more checkpoints, the command
 * exists, and no other supervisor is already running on the directory. Each failure is
 * a CkptError with one line a user can act on.
 */

export interface PreflightOptions {
  dir: string;
  stateDir: string;
  command: string;
  /** PATH and friends, to find `command` as the child would. */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Required free bytes; default: 3 times the largest checkpoint already in `dir`. */
  minFreeBytes?: number;
}

export interface PreflightResult {
  commandPath: string;
  freeBytes: number;
  requiredFreeBytes: number;
  largestCheckpointBytes: number;
}

/** How many more checkpoints of the largest size seen must fit, by default. */
export const CHECKPOINTS_OF_HEADROOM = 3;

export async function preflight(options: PreflightOptions): Promise<PreflightResult> {
  await ensureWritableDirectory(options.dir, "--dir");
  if (resolve(options.stateDir) !== resolve(options.dir)) await ensureWritableDirectory(options.stateDir, "--state-dir");
  const space = await checkFreeSpace(options.dir, options.minFreeBytes);
  const commandPath = await findCommand(options.command, options.env, options.cwd ?? process.cwd());
  await checkNotSupervised(options.stateDir);
  return { commandPath, ...space };
}

async function ensureWritableDirectory(dir: string, option: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw writeError(error, dir, option, "cannot create the directory");
  }
  const info = await stat(dir);
  if (!info.isDirectory()) throw new CkptError("DIR_NOT_WRITABLE", `${option}: is a file, not a directory`, { file: dir });
  await removeStaleProbes(dir);
  const probe = join(dir, `${PROBE_PREFIX}${process.pid}`);
  try {
    await writeFileAtomic(probe, "ckptguard checks that checkpoints can be written here\n");
    await unlink(probe);
    await syncDirectory(dir);
  } catch (error) {
    await unlink(probe).catch(() => undefined);
    throw writeError(error, dir, option, "cannot write, fsync and remove a file in it");
  }
}

const PROBE_PREFIX = ".ckptguard-write-probe-";

/** Probes (and their temp files) left by a preflight that was killed midway. */
async function removeStaleProbes(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = /^\.?\.ckptguard-write-probe-(\d+)/.exec(name)?.[1];
    if (pid !== undefined && !isAlive(Number(pid))) await unlink(join(dir, name)).catch(() => undefined);
  }
}

function writeError(error: unknown, dir: string, option: string, what: string): CkptError {
  const errno = (error as NodeJS.ErrnoException).code ?? "";
  if (errno === "ENOSPC" || errno === "EDQUOT") {
    return new CkptError("NO_SPACE", `${option}: no space left on the device (${errno})`, { file: dir }, { cause: error });
  }
  const why = errno === "ENOTDIR" ? "a component of the path is a file" : errno === "EROFS" ? "read-only file system" : errno === "EACCES" || errno === "EPERM" ? "permission denied" : (error as Error).message;
  return new CkptError("DIR_NOT_WRITABLE", `${option}: ${what} (${errno ? `${errno}: ` : ""}${why})`, { file: dir }, { cause: error });
}

async function checkFreeSpace(dir: string, minFreeBytes: number | undefined): Promise<Omit<PreflightResult, "commandPath">> {
  const fs = await statfs(dir);
  const freeBytes = Number(fs.bavail) * Number(fs.bsize);
  const candidates = await scanCheckpoints(dir).catch(() => []);
  const largestCheckpointBytes = candidates.reduce((max, c) => Math.max(max, c.size), 0);
  const requiredFreeBytes = minFreeBytes ?? CHECKPOINTS_OF_HEADROOM * largestCheckpointBytes;
  if (freeBytes < requiredFreeBytes) {
    const why = minFreeBytes !== undefined
      ? `--min-free ${formatBytes(minFreeBytes)}`
      : `room for ${CHECKPOINTS_OF_HEADROOM} more checkpoints of ${formatBytes(largestCheckpointBytes)}`;
    throw new CkptError("NO_SPACE", `--dir: ${formatBytes(freeBytes)} free, need ${formatBytes(requiredFreeBytes)} (${why})`, { file: dir });
  }
  return { freeBytes, requiredFreeBytes, largestCheckpointBytes };
}

/** The executable `command` names, found as execvp(3) would: a path as is, a bare name on PATH. */
export async function findCommand(command: string, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const candidates = command.includes("/")
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : (env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(delimiter).filter((d) => d !== "").map((d) => join(d, command));
  for (const candidate of candidates) {
    const info = await stat(candidate).catch(() => undefined);
    if (!info?.isFile()) continue;
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
    if (command.includes("/")) throw new CkptError("COMMAND_NOT_FOUND", "the command is not executable (chmod +x it, or run it through its interpreter)", { file: candidate });
  }
  const where = command.includes("/") ? "the command is not there (no such file)" : "the command is not found on PATH";
  throw new CkptError("COMMAND_NOT_FOUND", where, { file: command });
}

async function checkNotSupervised(stateDir: string): Promise<void> {
  const files = runFiles(stateDir);
  const pid = await readPidFile(files);
  if (pid === undefined || pid === process.pid || !isAlive(pid)) return;
  const progress = await readProgress(files);
  if (progress !== undefined && FINISHED_STATES.has(progress.status)) return;
  throw new CkptError("RUN_ACTIVE", `another ckptguard run (pid ${pid}) is supervising this directory; stop it or use another --state-dir`, { file: stateDir });
}
