/**
 * What changes between one launch of the training command and the next: the `{resume}`
 * token in its arguments, its environment, and how long to wait before relaunching.
 */

/** The token DESIGN.md's `run` and `rehearse` replace with the resume checkpoint. */
export const RESUME_TOKEN = "{resume}";

/**
 * Replaces `{resume}` in every argument. On a fresh start (`resume` undefined) an argument
 * that becomes empty is dropped together with the flag just before it, so
 * `--resume {resume}` vanishes; `--resume={resume}` vanishes as a whole too.
 */
export function substituteResume(args: readonly string[], resume: string | undefined): string[] {
  const out: string[] = [];
  for (const arg of args) {
    if (!arg.includes(RESUME_TOKEN)) {
      out.push(arg);
      continue;
    }
    const replaced = arg.split(RESUME_TOKEN).join(resume ?? "");
    if (replaced === "") {
      const previous = out[out.length - 1];
      if (previous !== undefined && previous.startsWith("-")) out.pop();
      continue;
    }
    // `--resume={resume}` with nothing to resume from: drop the flag rather than pass `--resume=`.
    if (resume === undefined && /^-[^=]*=$/.test(replaced)) continue;
    out.push(replaced);
  }
  return out;
}

/** The token `rehearse` replaces with the directory of the current attempt (DESIGN.md). */
export const DIR_TOKEN = "{dir}";

/** Replaces `{dir}` in every argument (the program's path included) with `dir`. */
export function substituteDir(args: readonly string[], dir: string): string[] {
  return args.map((arg) => arg.split(DIR_TOKEN).join(dir));
}

export interface ChildEnvironment {
  /** The checkpoint to resume from; `CKPTGUARD_RESUME` is unset when undefined. */
  resume: string | undefined;
  /** JSONL file the training script may append `{"step", "epoch", "loss", ...}` lines to. */
  progressFile: string;
  /** The checkpoint directory under supervision. */
  dir: string;
}

/** The child's environment: the supervisor's own plus the three CKPTGUARD_ variables. */
export function childEnvironment(base: NodeJS.ProcessEnv, vars: ChildEnvironment): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, CKPTGUARD_PROGRESS: vars.progressFile, CKPTGUARD_DIR: vars.dir };
  if (vars.resume === undefined) delete env.CKPTGUARD_RESUME;
  else env.CKPTGUARD_RESUME = vars.resume;
  return env;
}

/**
 * Exponential backoff: `baseMs` after the first failure in a row, doubling each time,
 * never more than `maxMs`.
 */
export function backoffDelay(failuresInARow: number, baseMs: number, maxMs: number): number {
  if (failuresInARow <= 0) return 0;
  return Math.min(maxMs, baseMs * 2 ** Math.min(failuresInARow - 1, 30));
}
