import { readFile } from "node:fs/promises";
import { CkptError } from "../errors.js";
import { checkUnitName } from "./marker-file.js";

/**
 * The units of a job, from a comma-separated list or a file with one name a line (blank lines
 * and `#` comments skipped): every name valid for docs/markers.md, none twice, at least one.
 * `option` names the flag in the USAGE error.
 */
export async function readUnitList(source: { units?: readonly string[] | string; unitsFile?: string }, option = "--units"): Promise<string[]> {
  if ((source.units === undefined) === (source.unitsFile === undefined)) {
    throw new CkptError("USAGE", `${option}: give the units as a comma-separated list or --units-file FILE (exactly one of them)`);
  }
  let units: string[];
  if (source.unitsFile !== undefined) {
    const text = await readFile(source.unitsFile, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new CkptError("USAGE", `--units-file: cannot read ${source.unitsFile}: ${error.code ?? error.message}`);
    });
    units = parseUnitLines(text);
  } else {
    units = typeof source.units === "string" ? source.units.split(",").map((u) => u.trim()).filter(Boolean) : [...source.units!];
  }
  return checkUnitList(units, source.unitsFile !== undefined ? "--units-file" : option);
}

export function parseUnitLines(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== "" && !line.startsWith("#"));
}

/** Throws USAGE (exit 2) for an empty list, a name the protocol refuses, or a name given twice. */
export function checkUnitList(units: readonly string[], option: string): string[] {
  if (units.length === 0) throw new CkptError("USAGE", `${option}: expected at least one unit`);
  const seen = new Set<string>();
  for (const unit of units) {
    try {
      checkUnitName(unit);
    } catch (error) {
      throw new CkptError("USAGE", `${option}: ${(error as Error).message}`);
    }
    if (seen.has(unit)) throw new CkptError("USAGE", `${option}: unit ${unit} is listed twice`);
    seen.add(unit);
  }
  return [...units];
}
