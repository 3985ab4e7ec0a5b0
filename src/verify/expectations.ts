/**
 * `--expect PATH=VALUE`: the value at a dotted path must equal VALUE. VALUE is JSON when it
 * parses (`768`, `[768,128]`, `true`, `"x"`) and a bare string otherwise (`kinematics`); a
 * PATH ending in `.shape` or `.dtype` reads that attribute of a tensor. Values are compared
 * structurally, numbers numerically (an int 768 equals 768.0), so both `latest --expect` and
 * `verify --expect` mean the same thing.
 */
import { CkptError } from "../errors.js";
import type { CheckpointModel, PickleValue } from "../formats/model.js";
import { childrenOf, getPath, pythonStr } from "../formats/tree.js";
import { problem, type Problem } from "./report.js";
import type { Rule } from "./verify-file.js";

/** A value as JSON can hold it: what VALUE parses to and what a checkpoint value becomes. */
export type PlainValue = null | boolean | number | string | PlainValue[] | { [key: string]: PlainValue };

export interface Expectation {
  path: string;
  expected: PlainValue;
}

/** Parses `PATH=VALUE`; a malformed one is a USAGE error naming the option and the value. */
export function parseExpectation(text: string, option = "--expect"): Expectation {
  const equals = text.indexOf("=");
  const path = equals < 0 ? "" : text.slice(0, equals).trim();
  if (path === "" || path.startsWith(".") || path.endsWith(".") || path.includes("..")) {
    throw new CkptError("USAGE", `${option} ${JSON.stringify(text)}: expected PATH=VALUE with a dotted PATH, e.g. config.hidden_dim=768`);
  }
  const raw = text.slice(equals + 1);
  let expected: PlainValue;
  try {
    expected = JSON.parse(raw) as PlainValue;
  } catch {
    expected = raw; // a bare word: `dataset=kinematics`
  }
  return { path, expected };
}

/** EXPECTATION_FAILED for each expectation the checkpoint does not meet. */
export function expectationRule(expectations: readonly Expectation[]): Rule {
  return (model: CheckpointModel) => expectationProblems(model.root, expectations);
}

export function expectationProblems(root: PickleValue, expectations: readonly Expectation[]): Problem[] {
  const out: Problem[] = [];
  for (const { path, expected } of expectations) {
    const found = lookUpExpected(root, path);
    if (found.missing) {
      out.push({ ...problem("EXPECTATION_FAILED", `${path}: expected ${show(expected)}, found nothing (${found.reason})`, { path }), details: { expected, found: null, missing: true } });
    } else if (!sameValue(expected, found.value)) {
      out.push({ ...problem("EXPECTATION_FAILED", `${path}: expected ${show(expected)}, found ${show(found.value)}`, { path }), details: { expected, found: found.value } });
    }
  }
  return out;
}

type Found = { missing: false; value: PlainValue } | { missing: true; reason: string };

/** The value at `path`; `x.shape`/`x.dtype` of a tensor `x` when no key is literally named so. */
export function lookUpExpected(root: PickleValue, path: string): Found {
  const direct = getPath(root, path);
  if (direct !== undefined) return { missing: false, value: plainValue(direct) };
  const attribute = /^(.*)\.(shape|dtype)$/.exec(path);
  if (attribute) {
    const owner = getPath(root, attribute[1]!);
    if (isTensor(owner)) return { missing: false, value: attribute[2] === "shape" ? [...owner.shape] : owner.dtype };
    if (owner !== undefined) return { missing: true, reason: `${attribute[1]} is not a tensor` };
  }
  return { missing: true, reason: "no such key" };
}

/** A checkpoint value as plain JSON data; a tensor as its `{dtype, shape}`. */
export function plainValue(value: PickleValue): PlainValue {
  if (value === null || typeof value === "boolean" || typeof value === "number" || typeof value === "string") return value;
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (isTensor(value)) return { dtype: value.dtype, shape: [...value.shape] };
  if (!Array.isArray(value) && value.kind === "dict") {
    return Object.fromEntries(value.entries.map(([k, v]) => [pythonStr(k), plainValue(v)]));
  }
  const children = childrenOf(value);
  if (children !== undefined) {
    const isObject = !Array.isArray(value) && value.kind === "object";
    return isObject ? Object.fromEntries(children.map(([k, v]) => [k, plainValue(v)])) : children.map(([, v]) => plainValue(v));
  }
  return pythonStr(value);
}

/** Structural equality; numbers numerically, so 768 equals 768.0. */
export function sameValue(expected: PlainValue, found: PlainValue): boolean {
  if (typeof expected === "number" || typeof found === "number") return typeof expected === typeof found && Number(expected) === Number(found);
  if (expected === null || found === null || typeof expected !== "object" || typeof found !== "object") return expected === found;
  if (Array.isArray(expected) || Array.isArray(found)) {
    return Array.isArray(expected) && Array.isArray(found) && expected.length === found.length && expected.every((e, i) => sameValue(e, found[i]!));
  }
  const keys = Object.keys(expected);
  return keys.length === Object.keys(found).length && keys.every((k) => k in found && sameValue(expected[k]!, found[k]!));
}

function isTensor(value: PickleValue | undefined): value is Extract<PickleValue, { kind: "tensor" }> {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) && value.kind === "tensor";
}

function show(value: PlainValue): string {
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
