import type { Command } from "commander";
import { relative } from "node:path";
import { CkptError, isCkptError } from "../errors.js";
import { selectCheckpoint } from "../catalog/latest.js";
import { addCatalogFlags, catalogOptions, type CatalogFlags } from "./catalog-flags.js";
import { entryJson, firstProblem } from "./catalog-render.js";
import type { CliContext, ExitCode } from "./context.js";

interface LatestFlags extends CatalogFlags {
  best?: boolean;
  quiet?: boolean;
  json?: boolean;
}

/**
 * `latest` prints exactly one path on stdout (DESIGN.md), so `--resume "$(ckptguard latest ckpt/)"`
 * works; what it skipped and why goes to stderr.
 */
export function registerLatest(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  addCatalogFlags(
    program
      .command("latest")
      .description("print the path of the newest checkpoint that is valid (full CRC, no NaN/Inf), complete and finished writing: what a resume should load")
      .argument("<dir>", "run directory, searched recursively")
      .option("--best", "the best by --metric instead of the newest")
      .option("--quiet", "do not list skipped checkpoints on stderr")
      .option("--json", "print {path, chosen, skipped, reason} as JSON instead of the bare path (path is null when none qualifies)"),
  ).action(async (dir: string, flags: LatestFlags) => {
    const options = catalogOptions(flags);
    const selection = await selectCheckpoint(dir, flags.best ? { ...options, best: options.best ?? {} } : options).catch((error: unknown) => {
      // A directory that cannot be read still answers --json with one document (path null), then the error.
      if (flags.json && isCkptError(error)) ctx.stdout.write(`${JSON.stringify({ path: null, chosen: null, skipped: [], reason: error.message }, null, 2)}\n`);
      throw error;
    });
    if (!flags.quiet) {
      for (const skipped of selection.skipped) {
        ctx.stderr.write(`ckptguard: skipped ${relative(dir, skipped.path) || skipped.path}: ${skipped.inProgress ? "in progress" : skipped.verdict} (${firstProblem(skipped)})\n`);
      }
    }
    if (flags.json) {
      // Printed before the error too, so a script reading stdout always gets one JSON document.
      ctx.stdout.write(`${JSON.stringify({
        path: selection.chosen?.path ?? null,
        chosen: selection.chosen ? entryJson(selection.chosen) : null,
        skipped: selection.skipped.map((e) => entryJson(e)),
        reason: selection.reason ?? null,
      }, null, 2)}\n`);
    }
    if (!selection.chosen) throw new CkptError("NO_VALID_CHECKPOINT", selection.reason ?? "no checkpoint qualifies", { file: dir });
    if (!flags.json) ctx.stdout.write(`${selection.chosen.path}\n`);
    setExit(0);
  });
}
