import type { Command } from "commander";
import { pythonCompanionDir } from "../companion/python-path.js";
import type { CliContext, ExitCode } from "./context.js";

/** `python-path` prints one absolute path, so `PYTHONPATH="$(ckptguard python-path)"` works. */
export function registerPythonPath(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("python-path")
    .description("print the folder of the Python companion package (add it to PYTHONPATH, or pip install it)")
    .action(() => {
      ctx.stdout.write(`${pythonCompanionDir()}\n`);
      setExit(0);
    });
}
