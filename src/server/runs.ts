import { createHash } from "node:crypto";
import { readdir, realpath, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { CkptError } from "../errors.js";
import { STATE_DIR_NAME } from "../run/run-files.js";
import { isStateDir } from "./state-file.js";

/**
 * Which runs the server knows: every directory holding a `.ckptguard/` state directory at
 * or below the directories it was given. A run's id is a short hash of its real path, so
 * it is the same across server restarts and says nothing about the file system.
 */

export interface KnownRun {
  /** 12 hex digits of SHA-256(real path). */
  id: string;
  /** The run (checkpoint) directory, real path. */
  dir: string;
  stateDir: string;
  /** The path shown: relative to the root it was found under, or the root's own name. */
  name: string;
}

export interface DiscoveryLimits {
  /** How many directory levels below a root are searched (default 4). */
  maxDepth: number;
  /** Directories listed per discovery at most (default 20,000): a huge tree is searched partly, not forever. */
  maxDirs: number;
}

export const DISCOVERY_DEFAULTS: DiscoveryLimits = { maxDepth: 4, maxDirs: 20_000 };

/** Never descended into: VCS, dependency and cache trees hold no runs and can be enormous. */
const SKIPPED_NAMES = new Set(["node_modules", "__pycache__", "site-packages", "wandb", "mlruns"]);

export const RUN_ID_PATTERN = /^[0-9a-f]{12}$/;

export function runId(realDir: string): string {
  return createHash("sha256").update(realDir).digest("hex").slice(0, 12);
}

/** Resolves the roots once at startup: each must be an existing directory. */
export async function resolveRoots(dirs: readonly string[]): Promise<string[]> {
  const roots: string[] = [];
  for (const dir of dirs.length > 0 ? dirs : ["."]) {
    const real = await realpath(dir).catch(() => undefined);
    const info = real === undefined ? undefined : await stat(real).catch(() => undefined);
    if (real === undefined || info === undefined) throw new CkptError("NOT_FOUND", `serve: ${dir} does not exist`, { file: dir });
    if (!info.isDirectory()) throw new CkptError("NOT_A_DIRECTORY", `serve: ${dir} is not a directory`, { file: dir });
    if (!roots.includes(real)) roots.push(real);
  }
  return roots;
}

/**
 * Finds the runs below `roots` (breadth first, symlinked directories not followed, hidden
 * directories skipped, a run's own subdirectories not searched). Sorted by name.
 */
export async function discoverRuns(roots: readonly string[], limits: DiscoveryLimits = DISCOVERY_DEFAULTS): Promise<KnownRun[]> {
  const found = new Map<string, KnownRun>();
  let listed = 0;
  for (const root of roots) {
    let level: string[] = [root];
    for (let depth = 0; depth <= limits.maxDepth && level.length > 0; depth++) {
      const next: string[] = [];
      for (const dir of level) {
        if (++listed > limits.maxDirs) break;
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
        if (entries.some((e) => e.name === STATE_DIR_NAME && e.isDirectory()) && (await isStateDir(join(dir, STATE_DIR_NAME)))) {
          const id = runId(dir);
          if (!found.has(id)) found.set(id, { id, dir, stateDir: join(dir, STATE_DIR_NAME), name: relative(root, dir) || basename(dir) || dir });
          continue;
        }
        for (const e of entries) {
          // Dirent.isDirectory() is false for a symlink, so links out of the tree are never followed.
          if (e.isDirectory() && !e.name.startsWith(".") && !SKIPPED_NAMES.has(e.name)) next.push(join(dir, e.name));
        }
      }
      level = next.sort();
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}
