/** What a command needs from the outside world; tests pass their own. */
export interface CliContext {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export function processContext(): CliContext {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** A command's outcome: the exit code runMain hands to the process. */
export type ExitCode = 0 | 1 | 2 | 3;
