/**
 * CheckpointManifest: the completion markers of one run directory (docs/markers.md) as a
 * library: mark a unit done, ask whether it still is, and plan a resume that skips finished
 * units, redoes those whose outputs no longer verify and, for ordered stages, redoes every
 * stage after the first broken one.
 */
import { mkdir, readdir, stat, unlink } from "node:fs/promises";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { CkptError } from "../errors.js";
import { verifyFile } from "../verify/verify-file.js";
import { syncDirectory, writeJsonAtomic } from "./atomic-write.js";
import { sha256File } from "./file-hash.js";
import {
  checkUnitName, describeOutput, MARKER_SUFFIX, markerPath, MARKERS_DIR, newMarker, outputLocation, readMarkerFile,
  type CompletionMarker,
} from "./marker-file.js";

export type { CompletionMarker, MarkerOutput } from "./marker-file.js";

/**
 * How hard "is this unit still done?" looks. "size": the marker is well formed and every
 * output exists with the recorded size (what the protocol requires, cheap). "hash": and its
 * SHA-256 matches (reads every byte). "verify": and every checkpoint output (.pt .pth .ckpt
 * .bin .safetensors) passes `verify` with a valid verdict.
 */
export type UnitCheck = "size" | "hash" | "verify";

/** A UnitCheck from a flag's text; `option` names the flag in the USAGE error. */
export function parseUnitCheck(text: string, option: string): UnitCheck {
  if (text === "size" || text === "hash" || text === "verify") return text;
  throw new CkptError("USAGE", `${option}: expected size, hash or verify, got ${JSON.stringify(text)}`);
}

/** Outputs `verify` reads as checkpoints. `.distcp` shards are only whole as a directory, so they get the hash check alone. */
const VERIFIED_EXTENSIONS: ReadonlySet<string> = new Set([".pt", ".pth", ".ckpt", ".bin", ".safetensors"]);

export interface UnitStatus {
  unit: string;
  done: boolean;
  marker?: CompletionMarker;
  /** Why the unit is not done: no marker, an output gone, changed or failing verification. */
  reason?: string;
}

export interface ResumePlan {
  /** Units whose marker stands and whose outputs still check out: never to be done again. */
  done: string[];
  /** Units to do, in the order given. */
  pending: string[];
  /** Markers removed because their outputs no longer checked out (the unit is pending again). */
  removed: Array<{ unit: string; reason: string }>;
}

export interface OrderedResumePlan extends ResumePlan {
  total: number;
  /** The first stage to do; undefined when every stage is done. */
  resumeFrom?: string;
  /** "Progress: X/Y stages complete, resuming from: <unit>" (or "... all stages complete"). */
  line: string;
}

export interface MarkDoneOptions {
  /** Who did the work (default `<hostname>:<pid>`). */
  worker?: string;
  /** Verify checkpoint outputs before marking; a rejected one throws and writes no marker. */
  verify?: boolean;
}

export class CheckpointManifest {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  markerPath(unit: string): string {
    return markerPath(this.dir, unit);
  }

  /**
   * Records that `unit` finished, producing `outputs` (the files must be complete): each is
   * fsynced, optionally verified, measured and hashed, then the marker is written atomically.
   * Marking a unit again replaces its marker.
   */
  async markDone(unit: string, outputs: readonly string[], options: MarkDoneOptions = {}): Promise<CompletionMarker> {
    const path = this.markerPath(unit);
    const files = outputs.map((output) => resolve(output));
    if (new Set(files).size !== files.length) throw new CkptError("USAGE", `outputs of ${unit} name a file twice: ${outputs.join(", ")}`);
    if (options.verify) {
      for (const file of files) {
        const failure = await verificationFailure(file);
        if (failure !== undefined) throw new CkptError(failure.code, `${unit}: output ${file} does not verify: ${failure.message}`, { file });
      }
    }
    const described = [];
    for (const file of files) described.push(await describeOutput(this.dir, file));
    for (const parent of new Set(files.map((file) => dirname(file)))) await syncDirectory(parent);
    const marker = newMarker(unit, described, options.worker);
    await this.makeMarkerDirectories(dirname(path));
    await writeJsonAtomic(path, marker);
    return marker;
  }

  readMarker(unit: string): Promise<CompletionMarker | undefined> {
    return readMarkerFile(this.dir, unit);
  }

  /** Whether `unit` is done, checked as hard as `check` says, and if not, why. */
  async unitStatus(unit: string, check: UnitCheck = "verify"): Promise<UnitStatus> {
    const marker = await this.readMarker(unit);
    if (marker === undefined) return { unit, done: false, reason: "no valid completion marker" };
    for (const output of marker.outputs) {
      const file = outputLocation(this.dir, output);
      const info = await stat(file).catch(() => undefined);
      if (info === undefined || !info.isFile()) return { unit, done: false, marker, reason: `output ${output.path} is missing` };
      if (info.size !== output.size) return { unit, done: false, marker, reason: `output ${output.path} is ${info.size} bytes, marked as ${output.size}` };
      if (check === "size") continue;
      if ((await sha256File(file)) !== output.sha256) return { unit, done: false, marker, reason: `output ${output.path} changed since it was marked (SHA-256 differs)` };
      if (check === "hash") continue;
      const failure = await verificationFailure(file);
      if (failure !== undefined) return { unit, done: false, marker, reason: `output ${output.path} does not verify (${failure.code}: ${failure.message})` };
    }
    return { unit, done: true, marker };
  }

  async isDone(unit: string, check: UnitCheck = "verify"): Promise<boolean> {
    return (await this.unitStatus(unit, check)).done;
  }

  /** Removes `unit`'s marker (undoing a unit: marker first, outputs after). True when one was there. */
  async unmark(unit: string): Promise<boolean> {
    const path = this.markerPath(unit);
    try {
      await unlink(path);
    } catch (error) {
      // ENOTDIR: `.done` (or a unit's subdirectory) is a file, so no marker can be there.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return false;
      throw error;
    }
    await syncDirectory(dirname(path));
    return true;
  }

  /** Every unit that has a marker file (well formed or not), sorted. */
  async doneUnits(): Promise<string[]> {
    const root = join(this.dir, MARKERS_DIR);
    const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
      .filter((entry) => entry.isFile() && entry.name.endsWith(MARKER_SUFFIX) && !entry.name.startsWith("."))
      .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join("/").slice(0, -MARKER_SUFFIX.length))
      .sort();
  }

  /**
   * Which of `units` to do. A unit with a standing marker is done; one whose marker no longer
   * checks out has it removed (so no later reader trusts it) and is pending with the rest.
   * `checked`: statuses the caller already has (with the same `check`), so no output is
   * hashed and verified twice.
   */
  async planResume(units: readonly string[], check: UnitCheck = "verify", checked?: ReadonlyMap<string, UnitStatus>): Promise<ResumePlan> {
    uniqueNames(units);
    const plan: ResumePlan = { done: [], pending: [], removed: [] };
    for (const unit of units) {
      const status = checked?.get(unit) ?? await this.unitStatus(unit, check);
      if (status.done) {
        plan.done.push(unit);
        continue;
      }
      plan.pending.push(unit);
      if (status.marker !== undefined || (await this.hasMarkerFile(unit))) {
        await this.unmark(unit);
        plan.removed.push({ unit, reason: status.reason ?? "marker does not check out" });
      }
    }
    return plan;
  }

  /**
   * For stages that build on each other: everything up to the first stage that is not done
   * stands; that stage and every later one are redone, so their markers are removed even
   * when their own outputs look fine (they were made from what is now broken or missing).
   * `checked` as for planResume.
   */
  async planOrderedResume(stages: readonly string[], check: UnitCheck = "verify", checked?: ReadonlyMap<string, UnitStatus>): Promise<OrderedResumePlan> {
    uniqueNames(stages);
    const plan: OrderedResumePlan = { done: [], pending: [], removed: [], total: stages.length, line: "" };
    let broken = false;
    for (const stage of stages) {
      if (!broken) {
        const status = checked?.get(stage) ?? await this.unitStatus(stage, check);
        if (status.done) {
          plan.done.push(stage);
          continue;
        }
        broken = true;
        plan.resumeFrom = stage;
        if (status.marker !== undefined || (await this.hasMarkerFile(stage))) {
          await this.unmark(stage);
          plan.removed.push({ unit: stage, reason: status.reason ?? "marker does not check out" });
        }
      } else if (await this.unmark(stage)) {
        plan.removed.push({ unit: stage, reason: `comes after ${plan.resumeFrom}, which is redone` });
      }
      plan.pending.push(stage);
    }
    plan.line = orderedProgressLine(plan.done.length, plan.total, plan.resumeFrom);
    return plan;
  }

  private async hasMarkerFile(unit: string): Promise<boolean> {
    return (await stat(this.markerPath(unit)).catch(() => undefined)) !== undefined;
  }

  /** mkdir -p under the run directory, fsyncing each new directory's parent so the marker's path survives a power cut. */
  private async makeMarkerDirectories(dir: string): Promise<void> {
    const missing: string[] = [];
    let d = dir;
    let info;
    for (; !(info = await stat(d).catch(() => undefined)); d = dirname(d)) missing.unshift(d);
    if (!info.isDirectory()) throw new CkptError("NOT_A_DIRECTORY", `cannot write the marker: ${d} is a file, not a directory`, { file: d });
    for (const d of missing) {
      await mkdir(d).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      });
      await syncDirectory(dirname(d));
    }
  }
}

/** "Progress: 4/6 units complete, 2 to do" (or "Progress: 6/6 units complete"). */
export function unitProgressLine(done: number, total: number): string {
  return `Progress: ${done}/${total} units complete${done < total ? `, ${total - done} to do` : ""}`;
}

/** "Progress: 2/5 stages complete, resuming from: stage_3". */
export function orderedProgressLine(complete: number, total: number, resumeFrom: string | undefined): string {
  return resumeFrom === undefined
    ? `Progress: ${complete}/${total} stages complete, nothing to resume`
    : `Progress: ${complete}/${total} stages complete, resuming from: ${resumeFrom}`;
}

function uniqueNames(units: readonly string[]): void {
  const seen = new Set<string>();
  for (const unit of units) {
    checkUnitName(unit);
    if (seen.has(unit)) throw new CkptError("USAGE", `unit ${unit} is listed twice`);
    seen.add(unit);
  }
}

/** Why a checkpoint output fails `verify` (the first error), or undefined when it passes or is not a checkpoint. */
async function verificationFailure(file: string): Promise<{ code: string; message: string } | undefined> {
  if (!VERIFIED_EXTENSIONS.has(extname(file).toLowerCase())) return undefined;
  const { report } = await verifyFile(file);
  if (report.verdict === "valid") return undefined;
  const first = report.problems.find((p) => p.severity === "error") ?? report.problems[0];
  return { code: first?.code ?? "CORRUPT", message: first?.message ?? report.verdict };
}
