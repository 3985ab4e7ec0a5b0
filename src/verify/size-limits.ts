/**
 * `--min-size` / `--max-size`: a 3 MB file where 1.5 GB ones usually land was saved by a
 * process that died or by code that forgot the optimizer. Sizes take decimal (`10MB`) and
 * binary (`1.5GiB`) units; a bare letter (`10M`) is refused because it is ambiguous.
 */
import { CkptError } from "../errors.js";
import type { CheckpointModel } from "../formats/model.js";
import { problem, type Problem } from "./report.js";
import type { Rule } from "./verify-file.js";

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Bytes of `10MB`, `1.5GiB`, `512` (bytes); a USAGE error naming the option otherwise. */
export function parseSize(text: string, option = "--min-size"): number {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match?.[2]?.toLowerCase() ?? "";
  const factor = unit === "" ? 1 : UNITS[unit];
  if (!match || factor === undefined) {
    const hint = /^[kmgt]$/i.test(unit) ? ` (say ${match?.[1]}${unit.toUpperCase()}B for decimal or ${match?.[1]}${unit.toUpperCase()}iB for binary units)` : "";
    throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected a size such as 10MB, 1.5GiB or 4096 (bytes)${hint}`);
  }
  return Math.round(Number(match[1]) * factor);
}

export interface SizeLimits {
  min?: number;
  max?: number;
}

/** FILE_TOO_SMALL / FILE_TOO_LARGE against the file's size on disk. */
export function sizeRule(limits: SizeLimits): Rule {
  if (limits.min !== undefined && limits.max !== undefined && limits.min > limits.max) {
    throw new CkptError("USAGE", `--min-size ${limits.min} is larger than --max-size ${limits.max}`);
  }
  return (model: CheckpointModel) => {
    const out: Problem[] = [];
    const size = model.fileSize;
    if (limits.min !== undefined && size < limits.min) {
      out.push({ ...problem("FILE_TOO_SMALL", `file is ${size} bytes, below --min-size ${limits.min}`), details: { size, min: limits.min } });
    }
    if (limits.max !== undefined && size > limits.max) {
      out.push({ ...problem("FILE_TOO_LARGE", `file is ${size} bytes, above --max-size ${limits.max}`), details: { size, max: limits.max } });
    }
    return out;
  };
}
