import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CkptError } from "../errors.js";

/**
 * The folder of the Python companion package (`python/`, holding `ckptguard/` and
 * `pyproject.toml`), shipped in the npm package beside `dist/`. Put it on PYTHONPATH or
 * `pip install` it. Resolved from this module's URL (`dist/src/companion/` is three levels
 * below the package root), so it holds wherever npm installed the package.
 */
export function pythonCompanionDir(): string {
  const dir = fileURLToPath(new URL("../../../python", import.meta.url));
  if (!existsSync(fileURLToPath(new URL("../../../python/ckptguard/__init__.py", import.meta.url)))) {
    throw new CkptError("NOT_FOUND", "the Python companion is missing from this installation (python/ckptguard/ beside dist/)", { file: dir });
  }
  return dir;
}
