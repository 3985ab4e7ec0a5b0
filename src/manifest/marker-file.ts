/**
 * Completion markers, protocol version 1 (docs/markers.md): `<dir>/.done/<unit>.done` says a
 * unit of work finished and names, sizes and hashes what it produced. The Python companion
 * (python/ckptguard/_markers.py) writes and reads the same files; this is the TypeScript side.
 */
import { hostname } from "node:os";
import { constants } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { CkptError } from "../errors.js";
import { sha256File } from "./file-hash.js";

export const MARKER_VERSION = 1;
export const MARKERS_DIR = ".done";
export const MARKER_SUFFIX = ".done";

/** Letters, digits, `_ . -` in `/`-separated parts, none starting with `.` or `-` (no `..`, no dot files). */
const UNIT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;
const MAX_UNIT_LENGTH = 200;
/** A marker is a few hundred bytes per output; anything this large is not one of ours. */
const MAX_MARKER_BYTES = 16 * 1024 * 1024;

export interface MarkerOutput {
  /** Relative to the run directory with `/` separators when inside it, else absolute. */
  path: string;
  size: number;
  sha256: string;
}

export interface CompletionMarker {
  version: 1;
  unit: string;
  outputs: MarkerOutput[];
  /** ISO 8601 UTC with milliseconds. */
  time: string;
  worker: string;
}

/** Throws BAD_UNIT_NAME unless `unit` is a name the protocol allows. */
export function checkUnitName(unit: unknown): string {
  if (typeof unit !== "string" || unit.length > MAX_UNIT_LENGTH || !UNIT_NAME.test(unit)) {
    throw new CkptError("BAD_UNIT_NAME", `unit must be 1-${MAX_UNIT_LENGTH} characters of letters, digits, _ . - in /-separated parts, each not starting with '.' or '-', got ${JSON.stringify(unit)}`);
  }
  return unit;
}

/** `<dir>/.done/<unit>.done`. */
export function markerPath(dir: string, unit: string): string {
  return join(resolve(dir), MARKERS_DIR, ...checkUnitName(unit).split("/")) + MARKER_SUFFIX;
}

/** Where an output recorded in a marker lies on disk. */
export function outputLocation(dir: string, output: MarkerOutput): string {
  return isAbsolute(output.path) ? output.path : join(resolve(dir), ...output.path.split("/"));
}

/** How a marker names a file: relative with `/` when inside `dir`, else absolute. */
export function recordedPath(dir: string, file: string): string {
  const rel = relative(resolve(dir), resolve(file));
  const inside = rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  return inside ? rel.split(sep).join("/") : resolve(file);
}

/** Size and SHA-256 of a regular file, fsynced first so the marker can never outlive it. */
export async function describeOutput(dir: string, file: string): Promise<MarkerOutput> {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; it
  // changes nothing for the regular files we accept.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
    throw new CkptError("OUTPUT_MISSING", `output ${file} cannot be opened (${error.code ?? error.message})`, { file });
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new CkptError("OUTPUT_MISSING", `output ${file} is not a regular file`, { file });
    await handle.sync();
  } finally {
    await handle.close();
  }
  const sha256 = await sha256File(file);
  const { size } = await stat(file);
  return { path: recordedPath(dir, file), size, sha256 };
}

export function newMarker(unit: string, outputs: MarkerOutput[], worker?: string): CompletionMarker {
  return { version: MARKER_VERSION, unit, outputs, time: new Date().toISOString(), worker: worker ?? `${hostname()}:${process.pid}` };
}

/**
 * The marker of `unit`, or undefined when it is absent or not a well-formed version-1 marker
 * of this unit (which means "not done"). A newer version throws FUTURE_VERSION: guessing
 * what a newer writer meant could skip work that is not done.
 */
export async function readMarkerFile(dir: string, unit: string): Promise<CompletionMarker | undefined> {
  const path = markerPath(dir, unit);
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > MAX_MARKER_BYTES) return undefined;
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const marker = parsed as Record<string, unknown>;
  const version = marker["version"];
  if (typeof version === "number" && Number.isInteger(version) && version > MARKER_VERSION) {
    throw new CkptError("FUTURE_VERSION", `completion marker version ${version} is newer than this reader's ${MARKER_VERSION}; upgrade ckptguard`, { file: path });
  }
  if (version !== MARKER_VERSION || marker["unit"] !== unit || !outputsWellFormed(marker["outputs"])) return undefined;
  return {
    version: MARKER_VERSION, unit, outputs: marker["outputs"],
    time: typeof marker["time"] === "string" ? marker["time"] : "", worker: typeof marker["worker"] === "string" ? marker["worker"] : "",
  };
}

function outputsWellFormed(outputs: unknown): outputs is MarkerOutput[] {
  return Array.isArray(outputs) && outputs.every((o) =>
    typeof o === "object" && o !== null
    && typeof o.path === "string" && o.path !== "" && (isAbsolute(o.path) || staysInside(o.path))
    && Number.isSafeInteger(o.size) && o.size >= 0
    && typeof o.sha256 === "string");
}

/**
 * A relative output path is written only for a file inside the run directory, so one with a
 * `..`, `.` or empty part is not one a writer made: it would send the reader outside it.
 */
function staysInside(path: string): boolean {
  return path.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}
