/** Where the benchmarks find the repository, the built CLI and torch's interpreter. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The interpreter that has torch (Debian's python3-torch); the `python3` on PATH may not. */
export const PYTHON = "/usr/bin/python3";

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no package.json above the bench script");
    dir = parent;
  }
  return dir;
}

/** The repository root (bench scripts run from bench/ or, compiled, from dist/bench/). */
export const ROOT = findRepoRoot();
/** The built CLI. */
export const CLI = join(ROOT, "dist/src/cli/main.js");
