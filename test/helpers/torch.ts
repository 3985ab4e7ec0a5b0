/**
 * Test helpers that talk to the real world: PyTorch 1.13 through `/usr/bin/python3`, and the
 * built CLI as a real child process. Neither helper throws on a non-zero exit; tests assert on
 * the returned code.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The interpreter that has torch (the `python3` on PATH may not). */
export const TORCH_PYTHON = "/usr/bin/python3";

/** What a finished child process left behind. */
export interface ProcessResult {
  stdout: string;
  stderr: string;
  /** Exit code; `null` when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

/** The repository root: the nearest directory above this file holding a package.json
 * (this file runs from `test/helpers/` or, compiled, from `dist/test/helpers/`). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot();
/** The built CLI entry point (`npx tsc -p tsconfig.json` writes it). */
export const CLI = join(REPO_ROOT, "dist/src/cli/main.js");
/** Where generated test data lives (gitignored). */
export const TEST_TMP = join(REPO_ROOT, "test/tmp");

const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

/** Runs `TORCH_PYTHON script ...args` without a shell. */
export function runPython(script: string, args: string[], timeoutMs = 120_000): Promise<ProcessResult> {
  return new Promise((resolvePromise) => {
    execFile(
      TORCH_PYTHON,
      [script, ...args],
      { encoding: "utf8", maxBuffer: MAX_OUTPUT_BYTES, timeout: timeoutMs, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        const failure = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null; killed?: boolean }) | null;
        resolvePromise({
          stdout,
          stderr: typeof failure?.code === "string" ? `${stderr}${failure.message}` : stderr,
          code: failure === null ? 0 : typeof failure.code === "number" ? failure.code : null,
          signal: failure?.signal ?? null,
          timedOut: failure?.killed === true && failure.signal === "SIGKILL",
        });
      },
    );
  });
}

/** Checkpoints written by real torch plus the ground truth torch read back from them. */
export interface RoundtripCheckpoints {
  dir: string;
  /** Parsed `expected.json`: file name -> `{torch_load, top_level_keys, entries}`, plus `_about`. */
  expected: Record<string, any>;
}

/** Writes the checkpoints of `test/python/make_roundtrip.py` for `seed` into a fresh
 * directory under `test/tmp/`. The caller removes `dir`. */
export async function makeRoundtripCheckpoints(seed: number): Promise<RoundtripCheckpoints> {
  await mkdir(TEST_TMP, { recursive: true });
  const dir = await mkdtemp(join(TEST_TMP, `roundtrip-${seed}-`));
  const script = join(REPO_ROOT, "test/python/make_roundtrip.py");
  const result = await runPython(script, [dir, String(seed)]);
  if (result.code !== 0) {
    throw new Error(`make_roundtrip.py ${dir} ${seed} exited with ${result.code ?? result.signal}:\n${result.stderr}`);
  }
  const expected: unknown = JSON.parse(await readFile(join(dir, "expected.json"), "utf8"));
  if (typeof expected !== "object" || expected === null || Array.isArray(expected)) {
    throw new Error(`${dir}/expected.json is not a JSON object`);
  }
  return { dir, expected: expected as Record<string, any> };
}

export interface RunCliOptions {
  /** Kill the CLI with SIGKILL after this long (default 60 s); the result says `timedOut`. */
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the CLI's stdin, which is then closed. */
  input?: string;
}

/** Runs `node dist/src/cli/main.js ...args` and collects its output. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<ProcessResult> {
  const { timeoutMs = 60_000, cwd = REPO_ROOT, env = process.env, input } = opts;
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on("error", () => {}); // the CLI may exit before reading its stdin
    child.stdin.end(input);
    const finish = (code: number | null, signal: NodeJS.Signals | null, extra = ""): void => {
      clearTimeout(timer);
      resolvePromise({
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8") + extra,
        code,
        signal,
        timedOut,
      });
    };
    child.on("error", (error) => finish(null, null, `spawn failed: ${error.message}`));
    child.on("close", (code, signal) => finish(code, signal));
  });
}
