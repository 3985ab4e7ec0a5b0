/**
 * Versions a checkpoint records: the torch zip `version` record, the legacy protocol, and
 * the checkpoint's own `version` / `checkpoint_version` / `pytorch-lightning_version` keys.
 * Format records have fixed limits (those of the torch that reads them); the checkpoint's own
 * versions are judged against `--accept-version RANGE` (a semver range, e.g. `">=1.8 <3"`).
 */
import { createRequire } from "node:module";
import type * as Semver from "semver";
import { CkptError } from "../errors.js";
import type { CheckpointModel, PickleValue } from "../formats/model.js";
import { getPath } from "../formats/tree.js";
import { problem, type Problem } from "./report.js";
import type { Rule } from "./verify-file.js";

/**
 * torch refuses zip records above kMaxSupportedFileFormatVersion (caffe2/serialize/versions.h,
 * 0xA since 1.x); torch.save writes kProducedFileFormatVersion, 3. data.pkl is the same for all.
 */
export const MAX_TORCH_ZIP_VERSION = 10;
const PRODUCED_TORCH_ZIP_VERSION = 3;

let semverModule: typeof Semver | undefined;
/** semver loads some 40 modules; only `--accept-version` needs it, so it loads on first use, not at every start. */
function semver(): typeof Semver {
  semverModule ??= createRequire(import.meta.url)("semver") as typeof Semver;
  return semverModule;
}

/** Top-level keys that record which code wrote the checkpoint. */
export const VERSION_KEYS = ["pytorch-lightning_version", "version", "checkpoint_version"] as const;

/** FUTURE_VERSION for a torch zip record newer than torch itself reads. Always on. */
export const formatVersionRule: Rule = (model: CheckpointModel) => {
  const version = model.versions.formatVersion;
  if (model.format === "torch-zip" && version !== undefined && version > MAX_TORCH_ZIP_VERSION) {
    return [{ ...problem("FUTURE_VERSION", `torch zip format version ${version}; torch reads up to ${MAX_TORCH_ZIP_VERSION}`), details: { key: "version record", version, accepted: `<=${MAX_TORCH_ZIP_VERSION}` } }];
  }
  return [];
};

/** Validates `--accept-version`: a semver range (`<3`, `>=1.8 <3`, `^2.1`). */
export function parseVersionRange(text: string, option = "--accept-version"): string {
  const range = semver().validRange(text);
  if (range === null || text.trim() === "") {
    throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected a semver range such as "<3", ">=1.8 <3" or "^2.1"`);
  }
  return text;
}

/**
 * FUTURE_VERSION for each version key above `range`; OLD_VERSION notes for ones below it and
 * for older serialization formats, saying how they were read.
 */
export function versionRule(range: string): Rule {
  return (model: CheckpointModel) => {
    const out: Problem[] = [];
    for (const { key, text } of checkpointVersions(model.root)) {
      const version = semver().valid(text) ?? semver().coerce(text)?.version;
      if (version === undefined || version === null) {
        out.push({ ...problem("OLD_VERSION", `${key} ${JSON.stringify(text)} is not a version semver can compare; accepted as is`, { path: key }, "info"), details: { key, version: text, accepted: range } });
      } else if (semver().satisfies(version, range)) {
        continue;
      } else if (semver().gtr(version, range)) {
        out.push({ ...problem("FUTURE_VERSION", `${key} ${text} is newer than --accept-version ${range}`, { path: key }), details: { key, version: text, accepted: range } });
      } else {
        out.push({ ...problem("OLD_VERSION", `${key} ${text} is older than --accept-version ${range}; accepted: its keys were read as stored, without the upgrade the writing library applies on load`, { path: key }, "info"), details: { key, version: text, accepted: range } });
      }
    }
    out.push(...formatNotes(model));
    return out;
  };
}

function formatNotes(model: CheckpointModel): Problem[] {
  const version = model.versions.formatVersion;
  if (model.format === "torch-legacy") {
    return [{ ...problem("OLD_VERSION", `legacy torch serialization (protocol ${version ?? "?"}, torch < 1.6 or _use_new_zipfile_serialization=False); read with the legacy reader`, {}, "info"), details: { key: "legacy protocol", version: version ?? null } }];
  }
  if (model.format === "torch-zip" && version !== undefined && version < PRODUCED_TORCH_ZIP_VERSION) {
    return [{ ...problem("OLD_VERSION", `torch zip format version ${version} (torch.save writes ${PRODUCED_TORCH_ZIP_VERSION}); data.pkl read the same way`, {}, "info"), details: { key: "version record", version } }];
  }
  return [];
}

/** The checkpoint's own version keys with their values as text. */
export function checkpointVersions(root: PickleValue): Array<{ key: string; text: string }> {
  const out: Array<{ key: string; text: string }> = [];
  for (const key of VERSION_KEYS) {
    const value = getPath(root, key);
    if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") out.push({ key, text: String(value) });
  }
  return out;
}
