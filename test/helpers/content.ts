/**
 * The checkpoints of `test/python/make_content.py` (optimizer defects, layouts, NaN/Inf),
 * written once per version of that script and shared by every test file that reads them:
 * written to a fresh directory, then renamed into place, so test files running in parallel
 * never see a half-written set.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT, runCli, runPython, TEST_TMP } from "./torch.js";

const SCRIPT = join(REPO_ROOT, "test/python/make_content.py");

/** Directory holding the content checkpoints (see make_content.py's docstring for the list). */
export async function contentCheckpoints(): Promise<string> {
  const digest = createHash("sha256").update(await readFile(SCRIPT)).digest("hex").slice(0, 12);
  const dir = join(TEST_TMP, `content-${digest}`);
  if (existsSync(dir)) return dir;
  await mkdir(TEST_TMP, { recursive: true });
  const scratch = await mkdtemp(join(TEST_TMP, "content-writing-"));
  const result = await runPython(SCRIPT, [scratch]);
  if (result.code !== 0) throw new Error(`make_content.py exited with ${result.code ?? result.signal}:\n${result.stderr}`);
  try {
    await rename(scratch, dir);
  } catch (error) {
    // Another test file finished first; its set is identical.
    if (!existsSync(dir)) throw error;
    await rm(scratch, { recursive: true, force: true });
  }
  return dir;
}

export interface ProblemJson {
  code: string;
  severity: string;
  message: string;
  where: { path?: string; member?: string; offset?: number };
  details?: Record<string, unknown>;
}

export interface ReportJson {
  path: string;
  format: string;
  verdict: string;
  problems: ProblemJson[];
}

/** Runs `ckptguard verify --json ...args` and returns the exit code, reports and stderr. */
export async function verifyJson(args: string[]): Promise<{ code: number | null; files: ReportJson[]; stderr: string }> {
  const result = await runCli(["verify", "--json", ...args]);
  if (result.stdout === "" && result.code !== 2) {
    throw new Error(`verify ${args.join(" ")} printed nothing (exit ${result.code ?? result.signal}):\n${result.stderr}`);
  }
  const files = result.stdout === "" ? [] : (JSON.parse(result.stdout) as { files: ReportJson[] }).files;
  return { code: result.code, files, stderr: result.stderr };
}
