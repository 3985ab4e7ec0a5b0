import { createRequire } from "node:module";
import type * as Commander from "commander";
import { formatLocation, isCkptError } from "../errors.js";
import { codeInfo } from "../verify/codes.js";
import type { CliContext, ExitCode } from "./context.js";

// require(), not import: commander's ESM entry re-exports its CommonJS build, and importing
// that makes Node scan the CommonJS source for its export names first (a few ms of start-up).
const { Command, CommanderError } = createRequire(import.meta.url)("commander") as typeof Commander;
type Command = Commander.Command;

/** Registers commands on a program; `setExit` records the command's exit code. */
export type CommandRegistrar = (program: Command, ctx: CliContext, setExit: (code: ExitCode) => void) => void;

/**
 * Parses `rawArgs` (without node and script), runs the command and returns its exit
 * code. Errors become one line on stderr (`--debug` adds the stack); usage errors exit 2,
 * unsafe content 3, every other failure 1. Tests call this directly with their own argv.
 */
export async function runMain(rawArgs: readonly string[], ctx: CliContext, registrars: readonly CommandRegistrar[], version: string): Promise<ExitCode> {
  let exitCode: ExitCode = 0;
  const debug = rawArgs.includes("--debug");
  const program = new Command("ckptguard")
    .description("verify PyTorch/safetensors checkpoints without executing them, and keep training runs from losing work")
    .version(version)
    .option("--debug", "print stack traces for errors")
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) });
  for (const register of registrars) register(program, ctx, (code) => { exitCode = code; });
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync([...rawArgs], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit through here too, with exitCode 0.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (isCkptError(error)) {
      const where = formatLocation(error.where);
      const file = error.where.file ? `${error.where.file}: ` : "";
      ctx.stderr.write(`ckptguard: ${file}${error.code}: ${error.message}${where ? ` (${where})` : ""}\n`);
      if (debug) ctx.stderr.write(`${error.stack ?? ""}\n`);
      if (error.code === "USAGE") return 2;
      return codeInfo(error.code).verdict === "unsafe" ? 3 : 1;
    }
    ctx.stderr.write(`ckptguard: internal error: ${(error as Error).message ?? String(error)}${debug ? "" : " (run with --debug for details)"}\n`);
    if (debug) ctx.stderr.write(`${(error as Error).stack ?? ""}\n`);
    return 1;
  }
}
