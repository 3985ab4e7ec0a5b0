/**
 * Run directories of real torch checkpoints (test/python/make_runs.py): truncated newest,
 * NaN, missing optimizer, best-not-best, gaps, restarts, Lightning and HF Trainer layouts.
 */
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT, runPython, TEST_TMP } from "./torch.js";

export interface RunDirs {
  /** Holds one directory per run (main, nan, noopt, ...); the caller removes it. */
  dir: string;
  /** Parsed expected.json: per run, the answers the tests assert. */
  expected: Record<string, any>;
}

export async function makeRunDirs(label: string): Promise<RunDirs> {
  await mkdir(TEST_TMP, { recursive: true });
  const dir = await mkdtemp(join(TEST_TMP, `runs-${label}-`));
  const result = await runPython(join(REPO_ROOT, "test/python/make_runs.py"), [dir]);
  if (result.code !== 0) throw new Error(`make_runs.py ${dir} exited with ${result.code ?? result.signal}:\n${result.stderr}`);
  return { dir, expected: JSON.parse(await readFile(join(dir, "expected.json"), "utf8")) as Record<string, any> };
}
