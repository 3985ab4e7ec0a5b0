import type { Command } from "commander";
import { CheckpointManifest } from "../manifest/markers.js";
import type { CliContext, ExitCode } from "./context.js";
import { requireExistingDir } from "./existing-dir.js";

/**
 * `mark-done`: the completion-marker writer for workers that are not Python (a shell script,
 * a C++ job): `ckptguard mark-done "$CKPTGUARD_DIR" "$unit" out/part-3.bin`.
 */
export function registerMarkDone(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("mark-done")
    .description("record that a unit of work finished: write <dir>/.done/<unit>.done atomically with each output's size and SHA-256")
    .argument("<dir>", "the run directory (CKPTGUARD_DIR under `ckptguard run`)")
    .argument("<unit>", "the unit's name: letters, digits, _ . - in /-separated parts")
    .argument("[outputs...]", "the files the unit produced (complete; they are fsynced and hashed)")
    .option("--verify", "verify checkpoint outputs (.pt .pth .ckpt .bin .safetensors) first; a rejected one writes no marker")
    .option("--worker <name>", "who did the work (default <hostname>:<pid>)")
    .action(async (dir: string, unit: string, outputs: string[], flags: { verify?: boolean; worker?: string }) => {
      await requireExistingDir(dir);
      const manifest = new CheckpointManifest(dir);
      await manifest.markDone(unit, outputs, { ...(flags.verify ? { verify: true } : {}), ...(flags.worker !== undefined ? { worker: flags.worker } : {}) });
      ctx.stdout.write(`${manifest.markerPath(unit)}\n`);
      setExit(0);
    });
}
