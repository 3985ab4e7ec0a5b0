import type { Command } from "commander";
import { CheckpointManifest, orderedProgressLine, parseUnitCheck, unitProgressLine, type UnitStatus } from "../manifest/markers.js";
import { readUnitList } from "../manifest/unit-list.js";
import type { CliContext, ExitCode } from "./context.js";
import { requireExistingDir } from "./existing-dir.js";
import { colorEnabled, palette } from "./style.js";

interface UnitsFlags {
  units?: string;
  unitsFile?: string;
  ordered?: boolean;
  check: string;
  repair?: boolean;
  json?: boolean;
}

/**
 * `units`: which units of a job are done by their completion markers (docs/markers.md) and
 * which a resume must redo. Read-only unless --repair, which removes the markers a resume
 * would not trust (what `run --workers` does before it starts).
 */
export function registerUnits(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("units")
    .description("which units of work are done (completion markers whose outputs check out) and which a resume redoes; exits 1 while any is pending")
    .argument("<dir>", "the run directory holding .done/")
    .option("--units <list>", "the job's units, comma-separated")
    .option("--units-file <file>", "the job's units, one a line")
    .option("--ordered", "units are stages: everything from the first stage not done is redone")
    .option("--check <how>", "size (the protocol's check), hash (+ SHA-256) or verify (+ checkpoint outputs verify)", "verify")
    .option("--repair", "remove the markers of units to redo, as a resume does")
    .option("--json", "print {dir, total, done, pending, removed, resume_from, units: [...]} as JSON")
    .action(async (dir: string, flags: UnitsFlags) => {
      const units = await readUnitList({ ...(flags.units !== undefined ? { units: flags.units } : {}), ...(flags.unitsFile !== undefined ? { unitsFile: flags.unitsFile } : {}) });
      const check = parseUnitCheck(flags.check, "--check");
      await requireExistingDir(dir);
      const manifest = new CheckpointManifest(dir);
      const statuses: UnitStatus[] = [];
      for (const unit of units) statuses.push(await manifest.unitStatus(unit, check));
      // Ordered: a stage after the first broken one is redone whatever its own marker says.
      const firstBroken = flags.ordered ? statuses.findIndex((s) => !s.done) : -1;
      const redo = (i: number): boolean => !statuses[i]!.done || (firstBroken >= 0 && i > firstBroken);
      // --repair acts on the statuses just read: every output is hashed and verified once.
      const checked = new Map(statuses.map((s) => [s.unit, s]));
      const plan = flags.repair
        ? flags.ordered ? await manifest.planOrderedResume(units, check, checked) : await manifest.planResume(units, check, checked)
        : undefined;
      const pending = units.filter((_, i) => redo(i));
      const resumeFrom = flags.ordered && firstBroken >= 0 ? units[firstBroken] : undefined;
      if (flags.json) {
        ctx.stdout.write(`${JSON.stringify({
          dir: manifest.dir, total: units.length, done: units.length - pending.length, pending: pending.length,
          resume_from: resumeFrom ?? null, removed: plan?.removed ?? [],
          units: statuses.map((s, i) => ({
            unit: s.unit, done: !redo(i), reason: s.done && redo(i) ? `comes after ${resumeFrom}, which is redone` : s.reason ?? null,
            worker: s.marker?.worker ?? null, time: s.marker?.time ?? null, outputs: s.marker?.outputs ?? [],
          })),
        }, null, 2)}\n`);
      } else {
        const c = palette(colorEnabled(ctx.stdout, ctx.env));
        statuses.forEach((s, i) => {
          const why = s.done && redo(i) ? `comes after ${resumeFrom}, which is redone` : s.reason;
          ctx.stdout.write(redo(i) ? `${c.red("pending")}  ${s.unit}: ${why}\n` : `${c.green("done")}     ${s.unit} (${s.marker!.worker}, ${s.marker!.time})\n`);
        });
        for (const r of plan?.removed ?? []) ctx.stdout.write(`removed marker of ${r.unit}: ${r.reason}\n`);
        const done = units.length - pending.length;
        ctx.stdout.write(`${flags.ordered ? orderedProgressLine(done, units.length, resumeFrom) : unitProgressLine(done, units.length)}\n`);
      }
      setExit(pending.length === 0 ? 0 : 1);
    });
}
