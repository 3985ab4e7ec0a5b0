import type { Command } from "commander";
import { CkptError } from "../errors.js";
import { parseDuration } from "../run/units.js";
import type { CliContext, ExitCode } from "./context.js";

interface ServeFlags {
  host: string;
  port: string;
  token?: string;
  maxGap?: number;
}

export function registerServe(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("serve")
    .description("serve a live dashboard and JSON API for the supervised runs found below the directories (read-only)")
    .argument("[dir...]", "directories searched for runs (`.ckptguard/` state) (default: the current directory)")
    .option("--host <address>", "address to bind; anything but loopback requires --token", "127.0.0.1")
    .option("--port <n>", "port (0 picks a free one)", "7117")
    .option("--token <token>", "require this token on every request (default: $CKPTGUARD_TOKEN)")
    .option("--max-gap <duration>", "colour last-save ages of runs started without --max-gap", (v) => parseDuration("--max-gap", v))
    .action(async (dirs: string[], flags: ServeFlags) => {
      if (!/^\d{1,5}$/.test(flags.port)) throw new CkptError("USAGE", `--port: expected a whole number from 0 to 65535, got ${JSON.stringify(flags.port)} (string)`);
      const token = flags.token ?? ctx.env.CKPTGUARD_TOKEN;
      // Loaded here, not at the top: every other command starts without the server's modules.
      const { startServer } = await import("../server/server.js");
      const served = await startServer({
        dirs, host: flags.host, port: Number(flags.port),
        ...(token !== undefined && token !== "" ? { token } : {}), ...(flags.maxGap !== undefined ? { maxGapMs: flags.maxGap } : {}),
      });
      ctx.stdout.write(`ckptguard: serving ${dirs.length > 0 ? dirs.join(", ") : "."} at ${served.url}${token ? " (token required)" : ""}; Ctrl-C stops\n`);
      await untilSignal(["SIGINT", "SIGTERM"]);
      await served.close();
      setExit(0);
    });
}

function untilSignal(signals: readonly NodeJS.Signals[]): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      for (const s of signals) process.off(s, done);
      resolve();
    };
    for (const s of signals) process.on(s, done);
  });
}
