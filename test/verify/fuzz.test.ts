/**
 * Seeded fuzzing of `verifyFile` on real torch-written checkpoints (a small MLP and its
 * Adam optimizer state, zip layout and its legacy twin): random truncations and random
 * single-byte flips. Whatever the mutation, the library answers (never throws) within 2 s;
 * a truncated file is never valid; and in the zip layout a flip inside any member's data
 * is always caught by that member's CRC-32. Each test names its mulberry32 seed, so a
 * failure reproduces with the same seed.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { FileSource } from "../../src/formats/file-source.js";
import { readZipDirectory } from "../../src/formats/zip.js";
import { PROBLEM_CODES } from "../../src/verify/codes.js";
import type { Report } from "../../src/verify/report.js";
import { verifyWithinCpuLimit } from "../helpers/cpu-time.js";
import { mulberry32, randomInt, type Random } from "../helpers/prng.js";
import { runPython, TEST_TMP } from "../helpers/torch.js";

const MUTATIONS = 300;
/* One verification of a ~20 KB file takes milliseconds of CPU; CPU_LIMIT_SECONDS means it hung. */

/** An MLP after one Adam step: weights, biases, exp_avg, exp_avg_sq, step counts. */
const TORCH_WRITER = `
import sys, torch
out = sys.argv[1]
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 48), torch.nn.ReLU(), torch.nn.Linear(48, 16))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
model(torch.randn(4, 16)).pow(2).mean().backward()
optimizer.step()
state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3, "loss": 0.25}
torch.save(state, out + "/mlp-adam.pt")
torch.save(state, out + "/mlp-adam-legacy.pt", _use_new_zipfile_serialization=False)
`;

interface MemberData {
  name: string;
  /** [start, end) of the member's data bytes in the file. */
  start: number;
  end: number;
}

interface Subject {
  name: string;
  layout: "zip" | "legacy";
  truncationSeed: number;
  flipSeed: number;
}

const SUBJECTS: Subject[] = [
  { name: "mlp-adam.pt", layout: "zip", truncationSeed: 0x7a1, flipSeed: 0x7a2 },
  { name: "mlp-adam-legacy.pt", layout: "legacy", truncationSeed: 0x1e1, flipSeed: 0x1e2 },
];

let dir = "";
const codesSeen = new Set<string>();

/** Verifies `bytes` written to `path`; fails (instead of throwing) with `what` when verifyFile throws or hangs. */
async function verifyMutated(path: string, bytes: Buffer, what: string): Promise<Report> {
  await writeFile(path, bytes);
  const report = await verifyWithinCpuLimit(path, what);
  for (const p of report.problems) codesSeen.add(p.code);
  return report;
}

async function memberDataRanges(path: string, size: number): Promise<MemberData[]> {
  const source = await FileSource.open(path, size);
  try {
    const directory = await readZipDirectory(source);
    return directory.members.map((m) => ({ name: m.name, start: m.dataOffset, end: m.dataOffset + m.compressedSize }));
  } finally {
    await source.close();
  }
}

function describeProblems(report: Report): string {
  return report.problems.map((p) => `${p.code} ${JSON.stringify(p.where)}`).join("; ") || "no problems";
}

describe("fuzzing verifyFile with truncations and byte flips of real checkpoints", () => {
  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "fuzz-"));
    const written = await runPython("-c", [TORCH_WRITER, dir]);
    assert.equal(written.code, 0, `torch could not write the checkpoints: ${written.stderr}`);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const subject of SUBJECTS) {
    describe(`${subject.name} (${subject.layout})`, () => {
      let original = Buffer.alloc(0);
      const mutated = (): string => join(dir, `mutated-${subject.name}`);

      before(async () => {
        original = await readFile(join(dir, subject.name));
      });

      it("is a 10-30 KB checkpoint that verifies valid unmutated", async () => {
        assert.ok(original.length > 10_000 && original.length < 30_000, `${subject.name} is ${original.length} bytes`);
        const report = await verifyMutated(mutated(), original, "the unmutated file");
        assert.equal(report.verdict, "valid", describeProblems(report));
        assert.equal(report.format, subject.layout === "zip" ? "torch-zip" : "torch-legacy");
      });

      it(`never calls one of ${MUTATIONS} random truncations valid (mulberry32 seed ${subject.truncationSeed})`, async () => {
        const random: Random = mulberry32(subject.truncationSeed);
        for (let round = 0; round < MUTATIONS; round++) {
          const length = randomInt(random, 0, original.length);
          const what = `${subject.name} truncated to ${length} of ${original.length} bytes (seed ${subject.truncationSeed}, round ${round})`;
          const report = await verifyMutated(mutated(), original.subarray(0, length), what);
          assert.notEqual(report.verdict, "valid", `${what} is called valid`);
        }
      });

      const flipClaim = subject.layout === "zip"
        ? "calls every flip inside a member's data corrupt with CRC_MISMATCH naming that member"
        : "answers every flip without throwing or hanging (legacy files carry no CRC)";
      it(`${flipClaim}: ${MUTATIONS} random single-byte flips (mulberry32 seed ${subject.flipSeed})`, async (t) => {
        const random: Random = mulberry32(subject.flipSeed);
        const members = subject.layout === "zip" ? await memberDataRanges(join(dir, subject.name), original.length) : [];
        let flipsInData = 0;
        for (let round = 0; round < MUTATIONS; round++) {
          const position = randomInt(random, 0, original.length);
          const mask = randomInt(random, 1, 256);
          const bytes = Buffer.from(original);
          bytes[position] = bytes[position]! ^ mask;
          const what = `${subject.name} with byte ${position} xor 0x${mask.toString(16)} (seed ${subject.flipSeed}, round ${round})`;
          const report = await verifyMutated(mutated(), bytes, what);
          const hit = members.find((m) => position >= m.start && position < m.end);
          if (hit === undefined) continue;
          flipsInData++;
          assert.equal(report.verdict, "corrupt", `${what} (inside ${hit.name}'s data): ${describeProblems(report)}`);
          assert.ok(
            report.problems.some((p) => p.code === "CRC_MISMATCH" && p.where.member === hit.name),
            `${what}: expected CRC_MISMATCH naming ${hit.name}, got ${describeProblems(report)}`,
          );
        }
        if (subject.layout === "zip") t.diagnostic(`${flipsInData} of ${MUTATIONS} flips landed inside member data`);
        if (subject.layout === "zip") assert.ok(flipsInData > MUTATIONS / 2, `only ${flipsInData} flips landed in member data`);
      });
    });
  }

  it("reports only problem codes declared in src/verify/codes.ts", (t) => {
    t.diagnostic(`codes seen: ${[...codesSeen].sort().join(", ")}`);
    assert.ok(codesSeen.size > 0, "the fuzz tests above ran");
    const undeclared = [...codesSeen].filter((code) => !(code in PROBLEM_CODES));
    assert.deepEqual(undeclared, [], `codes seen while fuzzing but missing from codes.ts: ${undeclared.join(", ")}`);
  });
});
