#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { processContext } from "./context.js";
import { runMain, type CommandRegistrar } from "./run-main.js";

/**
 * Every command of the CLI, loaded on demand: each file under src/cli/ registers one,
 * and only the invoked command's modules are imported, so `inspect` does not pay for
 * the server, the supervisor or the catalog at start-up.
 */
export const COMMAND_LOADERS: Readonly<Record<string, () => Promise<CommandRegistrar>>> = {
  inspect: async () => (await import("./inspect.js")).registerInspect,
  verify: async () => (await import("./verify.js")).registerVerify,
  diff: async () => (await import("./diff.js")).registerDiff,
  ls: async () => (await import("./ls.js")).registerLs,
  latest: async () => (await import("./latest.js")).registerLatest,
  "check-run": async () => (await import("./check-run.js")).registerCheckRun,
  run: async () => (await import("./run.js")).registerRun,
  status: async () => (await import("./status.js")).registerStatus,
  serve: async () => (await import("./serve.js")).registerServe,
  rehearse: async () => (await import("./rehearse.js")).registerRehearse,
  "python-path": async () => (await import("./python-path.js")).registerPythonPath,
  units: async () => (await import("./units.js")).registerUnits,
  "mark-done": async () => (await import("./mark-done.js")).registerMarkDone,
};

/** The registrars `args` needs: the named command's alone, or all of them for help and unknown names. */
export async function registrarsFor(args: readonly string[]): Promise<CommandRegistrar[]> {
  // Global options take no values, so the first non-option word is the command.
  const name = args.find((arg) => !arg.startsWith("-"));
  const load = name === undefined ? undefined : COMMAND_LOADERS[name];
  return load ? [await load()] : Promise.all(Object.values(COMMAND_LOADERS).map((loader) => loader()));
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}

// The one place that sets the process's exit status. exitCode (not exit()) lets piped stdout drain.
const args = process.argv.slice(2);
process.exitCode = await runMain(args, processContext(), await registrarsFor(args), packageVersion());
