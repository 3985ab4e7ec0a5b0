#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { processContext } from "./context.js";
import { registerInspect } from "./inspect.js";
import { runMain, type CommandRegistrar } from "./run-main.js";
import { registerVerify } from "./verify.js";

/** Every command of the CLI; each file under src/cli/ registers one. */
export const COMMANDS: readonly CommandRegistrar[] = [registerInspect, registerVerify];

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}

// The one place that sets the process's exit status. exitCode (not exit()) lets piped stdout drain.
process.exitCode = await runMain(process.argv.slice(2), processContext(), COMMANDS, packageVersion());
