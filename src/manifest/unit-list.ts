import { createReadStream } from "node:fs";
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
    units = parseUnitLines(await readUnitsFile(source.unitsFile));
  } else {
    units = typeof source.units === "string" ? source.units.split(",").map((u) => u.trim()).filter(Boolean) : [...source.units!];
  }
  return checkUnitList(units, source.unitsFile !== undefined ? "--units-file" : option);
}

/**
 * A units file is a list of names of at most 200 characters; 16 MiB holds tens of thousands.
 * Read as a stream with that cap, so `/dev/zero` or an endless pipe is refused rather than
 * read until memory runs out, while `--units-file <(generate)` still works.
 */
export const MAX_UNITS_FILE_BYTES = 16 * 1024 * 1024;

async function readUnitsFile(file: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_UNITS_FILE_BYTES) throw new CkptError("USAGE", `--units-file: ${file} holds more than ${MAX_UNITS_FILE_BYTES} bytes; that is not a list of unit names`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof CkptError) throw error;
    const { code, message } = error as NodeJS.ErrnoException;
    throw new CkptError("USAGE", `--units-file: cannot read ${file}: ${code ?? message}`);
  }
  return Buffer.concat(chunks).toString("utf8");
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
