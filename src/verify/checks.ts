/**
 * The content checks `verify` (and `latest`) take as options, validated once at the edge:
 * every malformed value is a USAGE error naming the option and the value, before any file
 * is read. The result is a list of rules for verifyFile/verifyPaths.
 */
import { expectationRule, parseExpectation } from "./expectations.js";
import { kindRule, parseKind, parseRequiredKey, requireRule } from "./requirements.js";
import { parseSize, sizeRule } from "./size-limits.js";
import type { Rule } from "./verify-file.js";
import { parseVersionRange, versionRule } from "./versions.js";

/** The options as the command line gives them (strings). */
export interface CheckOptions {
  /** `--require KEY` (dotted key paths). */
  require?: readonly string[];
  /** `--kind training`. */
  kind?: string;
  /** `--expect PATH=VALUE`. */
  expect?: readonly string[];
  /** `--min-size` / `--max-size` (`10MB`, `1.5GiB`, bytes). */
  minSize?: string;
  maxSize?: string;
  /** `--accept-version RANGE` (semver range). */
  acceptVersion?: string;
}

export function checkRules(options: CheckOptions): Rule[] {
  const rules: Rule[] = [];
  const required = (options.require ?? []).map((key) => parseRequiredKey(key));
  if (required.length > 0) rules.push(requireRule(required));
  if (options.kind !== undefined) rules.push(kindRule(parseKind(options.kind)));
  const expectations = (options.expect ?? []).map((text) => parseExpectation(text));
  if (expectations.length > 0) rules.push(expectationRule(expectations));
  const min = options.minSize === undefined ? undefined : parseSize(options.minSize, "--min-size");
  const max = options.maxSize === undefined ? undefined : parseSize(options.maxSize, "--max-size");
  if (min !== undefined || max !== undefined) rules.push(sizeRule({ ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) }));
  if (options.acceptVersion !== undefined) rules.push(versionRule(parseVersionRange(options.acceptVersion)));
  return rules;
}
