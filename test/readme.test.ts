/** The README is part of the contract: every problem code is documented there. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { PROBLEM_CODES } from "../src/verify/codes.js";

const readme = readFileSync("README.md", "utf8");

it("lists every problem code in the README's code table", () => {
  const missing = Object.keys(PROBLEM_CODES).filter((code) => !readme.includes(`| \`${code}\` |`));
  assert.deepEqual(missing, []);
});

it("lists only codes that exist", () => {
  const listed = [...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  const unknown = listed.filter((code) => code !== undefined && !(code in PROBLEM_CODES));
  assert.deepEqual(unknown, []);
});
