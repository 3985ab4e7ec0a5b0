/**
 * Hostile and broken input never crashes, hangs or balloons the CLI. Every case below must
 * give one clear line on stderr (`inspect`) or a problem in `verify --json`, the exact exit
 * code of DESIGN.md, no stack trace, an answer within 2 s and a peak RSS under 300 MB.
 * The library itself is run in-process for the many-case sweeps (every truncation point of
 * a real checkpoint, random bytes), where spawning one CLI per case would be too slow.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createDeflateRaw } from "node:zlib";

import { PROBLEM_CODES } from "../../src/verify/codes.js";
import { verifyFile } from "../../src/verify/verify-file.js";
import { gnuTimeMissing, runCliMeasured } from "../helpers/peak-rss.js";
import { CPU_LIMIT_SECONDS, verifyWithinCpuLimit } from "../helpers/cpu-time.js";
import { mulberry32, randomBuffer } from "../helpers/prng.js";
import { runPython, TEST_TMP, type ProcessResult } from "../helpers/torch.js";
import { buildZip, type ZipEntrySpec } from "../helpers/zip-builder.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/**
 * "No hang, < 2 s": the CLI may spend at most 2 s of CPU on a small bad input (node itself
 * starts in ~0.1 s). CPU time, not wall time, is asserted because the suite shares two
 * cores with torch training in other test files; a wall-clock limit 10x larger still
 * catches a process that blocks without spending CPU (e.g. opening a FIFO).
 */
const ANSWER_WITHIN_MS = 20_000;
/** "Bounded memory": node's own baseline is ~60 MB. */
const MAX_PEAK_RSS_KB = 300 * 1024;
const IS_ROOT = process.getuid?.() === 0;

let dir = "";
/** Absolute path of a file or directory in this run's scratch directory. */
const at = (name: string): string => join(dir, name);

// ----- inputs -------------------------------------------------------------------------

/** `}` (EMPTY_DICT) at protocol 2: the smallest data.pkl that reads as a dict. */
const EMPTY_DICT_PICKLE = Buffer.from([0x80, 0x02, 0x7d, 0x2e]);

/** A zip laid out as torch writes one: `<prefix>/data.pkl`, storages, `<prefix>/version`. */
function torchLikeZip(prefix: string, pickle: ZipEntrySpec | Buffer, storages: ZipEntrySpec[] = []): Buffer {
  const pickleEntry = Buffer.isBuffer(pickle) ? { name: `${prefix}/data.pkl`, data: pickle } : pickle;
  const entries = [pickleEntry, ...storages, { name: `${prefix}/version`, data: Buffer.from("3\n") }];
  return buildZip({ entries: entries.map((e) => ({ alignTo: 64, ...e })) }).bytes;
}

/** A member whose central directory and local header both claim `claimed` bytes (zip64), with 64 real ones. */
function memberClaiming(name: string, claimed: number, method: 0 | 8): ZipEntrySpec {
  const sizes = method === 0 ? { compressedSize: claimed, uncompressedSize: claimed } : { uncompressedSize: claimed };
  return { name, data: Buffer.alloc(64, 1), method, zip64: true, central: sizes, local: sizes };
}

/** Raw deflate of `length` zero bytes, produced a MiB at a time so the test never holds them all. */
async function deflatedZeros(length: number): Promise<Buffer> {
  const deflater = createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  deflater.on("data", (chunk: Buffer) => chunks.push(chunk));
  const ended = once(deflater, "end");
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < length; written += zeros.length) {
    if (!deflater.write(zeros)) await once(deflater, "drain");
  }
  deflater.end();
  await ended;
  return Buffer.concat(chunks);
}

/** A member that records `declared` zero bytes (and their CRC) but whose deflate stream `compressed` inflates to far more. */
function deflateBomb(name: string, declared: number, compressed: Buffer): ZipEntrySpec {
  return { name, data: Buffer.alloc(declared), method: 8, rawData: compressed };
}

/** Protocol 4, BINUNICODE8 (0x8d) declaring a 4 GiB string, then three bytes and STOP. */
function hugeStringPickle(): Buffer {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(4n << 30n);
  return Buffer.concat([Buffer.from([0x80, 0x04, 0x8d]), length, Buffer.from("abc"), Buffer.from([0x2e])]);
}

/** `[[[...]]]` `depth` deep at protocol 2: `depth` EMPTY_LISTs, then APPEND each into the one below. */
function nestedListPickle(depth: number): Buffer {
  return Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(depth, 0x5d), Buffer.alloc(depth - 1, 0x61), Buffer.from([0x2e])]);
}

/** `{0: {0: {...}}}` `depth` deep: EMPTY_DICT, then (key 0, EMPTY_DICT) pairs, then SETITEMs inward-out. */
function nestedDictPickle(depth: number): Buffer {
  const pairs = Buffer.alloc((depth - 1) * 3);
  for (let i = 0; i < depth - 1; i++) pairs.set([0x4b, 0x00, 0x7d], i * 3); // BININT1 0, EMPTY_DICT
  return Buffer.concat([Buffer.from([0x80, 0x02, 0x7d]), pairs, Buffer.alloc(depth - 1, 0x73), Buffer.from([0x2e])]);
}

/** `{((((),),),): 1}` with the key tuple `depth` deep: EMPTY_TUPLE, TUPLE1 x depth, BININT1 1, SETITEM. */
function deepTupleKeyPickle(depth: number): Buffer {
  return Buffer.concat([Buffer.from([0x80, 0x02, 0x7d, 0x29]), Buffer.alloc(depth, 0x85), Buffer.from([0x4b, 0x01, 0x73, 0x2e])]);
}

/** LONG4 (0x8b) holding a `length`-byte integer: Python decodes it in linear time. */
function longIntegerPickle(length: number): Buffer {
  const head = Buffer.from([0x80, 0x02, 0x8b, 0, 0, 0, 0]);
  head.writeInt32LE(length, 3);
  return Buffer.concat([head, Buffer.alloc(length, 0x01), Buffer.from([0x2e])]);
}

/**
 * `levels` lists, each holding the one below twice through the memo (BINGET): 2^levels
 * leaves in a few hundred bytes, the pickle form of "billion laughs". Python loads it at once.
 */
function sharedListsPickle(levels: number): Buffer {
  const parts = [Buffer.from([0x80, 0x02, 0x5d, 0x71, 0x00])]; // EMPTY_LIST, BINPUT 0
  for (let i = 1; i <= levels; i++) parts.push(Buffer.from([0x5d, 0x28, 0x68, i - 1, 0x68, i - 1, 0x65, 0x71, i])); // ], MARK, BINGET x2, APPENDS, BINPUT
  return Buffer.concat([...parts, Buffer.from([0x2e])]);
}

/** A list nested `depth` deep whose innermost list holds `width` references to one memoized empty list. */
function deepThenWidePickle(depth: number, width: number): Buffer {
  const refs = Buffer.alloc(width * 2);
  for (let i = 0; i < width; i++) refs.set([0x68, 0x00], i * 2); // BINGET 0
  return Buffer.concat([
    Buffer.from([0x80, 0x02, 0x5d, 0x71, 0x00, 0x30]), // EMPTY_LIST, BINPUT 0, POP
    Buffer.alloc(depth, 0x5d), Buffer.from([0x28]), refs, Buffer.from([0x65]), Buffer.alloc(depth - 1, 0x61), Buffer.from([0x2e]),
  ]);
}

/** Files of random bytes, each from its own seed. */
const RANDOM_FILES = [{ seed: 1, size: 1 }, { seed: 2, size: 7 }, { seed: 3, size: 100 }, { seed: 4, size: 4096 }, { seed: 5, size: MiB }];
const randomFileName = (seed: number, size: number): string => `random-${size}-seed-${seed}.bin`;

/** Small real checkpoints, zip and legacy, each well under 2 KB. */
const TORCH_WRITER = `
import sys, torch
out = sys.argv[1]
torch.manual_seed(0)
state = {"w": torch.randn(3, 3), "step": 1}
torch.save(state, out + "/small.pt")
torch.save(state, out + "/small-legacy.pt", _use_new_zipfile_serialization=False)
`;

async function writeInputs(): Promise<void> {
  await mkdir(at("empty-dir"));
  await mkdir(at("dir-with-checkpoint"));
  const written = await runPython("-c", [TORCH_WRITER, dir]);
  assert.equal(written.code, 0, `torch could not write the checkpoints: ${written.stderr}`);
  await writeFile(at("dir-with-checkpoint/model.pt"), await readFile(at("small.pt")));

  execFileSync("mkfifo", [at("fifo")]);
  await mkdir(at("dir-with-fifo"));
  execFileSync("mkfifo", [at("dir-with-fifo/model.pt")]);
  await writeFile(at("unreadable.pt"), await readFile(at("small.pt")));
  await chmod(at("unreadable.pt"), 0o000);

  // 10 GiB sparse files: only their first bytes are real, the rest reads as zeros.
  const sparse = async (name: string, head: Buffer): Promise<void> => {
    await writeFile(at(name), head);
    await truncate(at(name), 10 * GiB);
  };
  await sparse("sparse-zeros.pt", Buffer.alloc(0));
  await sparse("sparse-random.pt", Buffer.concat([Buffer.from("rnd"), randomBuffer(mulberry32(10), 4093)]));
  await sparse("sparse-zip-head.pt", Buffer.concat([Buffer.from("PK\x03\x04", "latin1"), randomBuffer(mulberry32(11), 60)]));
  await sparse("sparse-legacy-head.pt", Buffer.from([0x80, 0x02, 0x8a, 0x0a]));
  const safetensorsHead = Buffer.alloc(9, "{");
  safetensorsHead.writeBigUInt64LE(BigInt(9 * GiB), 0); // a 9 GiB JSON header: beyond any real one
  await sparse("sparse-safetensors-head.safetensors", safetensorsHead);

  const claim = 50 * GiB;
  await writeFile(at("claims-50g-storage-stored.pt"), torchLikeZip("huge", EMPTY_DICT_PICKLE, [memberClaiming("huge/data/0", claim, 0)]));
  await writeFile(at("claims-50g-storage-deflated.pt"), torchLikeZip("huge", EMPTY_DICT_PICKLE, [memberClaiming("huge/data/0", claim, 8)]));
  await writeFile(at("claims-50g-pickle-stored.pt"), torchLikeZip("huge", memberClaiming("huge/data.pkl", claim, 0)));
  await writeFile(at("claims-50g-pickle-deflated.pt"), torchLikeZip("huge", memberClaiming("huge/data.pkl", claim, 8)));

  const bomb = await deflatedZeros(200 * MiB);
  await writeFile(at("bomb-storage.pt"), torchLikeZip("bomb", EMPTY_DICT_PICKLE, [deflateBomb("bomb/data/0", 64 * 1024, bomb)]));
  await writeFile(at("bomb-pickle.pt"), torchLikeZip("bomb", deflateBomb("bomb/data.pkl", 64 * 1024, bomb)));

  await writeFile(at("huge-string.pt"), torchLikeZip("huge", hugeStringPickle()));
  await writeFile(at("nested-list.pt"), nestedListPickle(100_000));
  await writeFile(at("nested-list-zip.pt"), torchLikeZip("nested", nestedListPickle(100_000)));
  await writeFile(at("nested-dict-zip.pt"), torchLikeZip("nested", nestedDictPickle(100_000)));
  await writeFile(at("deep-tuple-key-zip.pt"), torchLikeZip("nested", deepTupleKeyPickle(100_000)));

  await writeFile(at("long-integer-zip.pt"), torchLikeZip("slow", longIntegerPickle(MiB)));
  await writeFile(at("shared-lists-zip.pt"), torchLikeZip("slow", sharedListsPickle(50)));
  await writeFile(at("deep-then-wide-zip.pt"), torchLikeZip("slow", deepThenWidePickle(998, 100_000)));

  for (const { seed, size } of RANDOM_FILES) await writeFile(at(randomFileName(seed, size)), randomBuffer(mulberry32(seed), size));
}

// ----- assertions ---------------------------------------------------------------------

function assertNoStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `stderr holds stack frames:\n${stderr}`);
  assert.doesNotMatch(stderr, /Error:/, `stderr holds an error dump:\n${stderr}`);
}

function describeRun(result: ProcessResult): string {
  return `exit ${result.code} signal ${result.signal}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr.slice(0, 2000)}`;
}

/**
 * Runs the CLI once under GNU time: it answers before the timeout kills it, exits with
 * `exit`, prints no stack, and its peak RSS stays bounded.
 */
async function runBounded(args: string[], exit: number | readonly number[]): Promise<ProcessResult> {
  const result = await runCliMeasured(args, ANSWER_WITHIN_MS);
  assert.equal(result.timedOut, false, `ckptguard ${args.join(" ")} did not answer within ${ANSWER_WITHIN_MS} ms`);
  assert.ok(result.cpuSeconds < CPU_LIMIT_SECONDS, `ckptguard ${args.join(" ")} used ${result.cpuSeconds.toFixed(2)} s of CPU (limit ${CPU_LIMIT_SECONDS} s)`);
  if (typeof exit === "number") assert.equal(result.code, exit, describeRun(result));
  else assert.ok(result.code !== null && exit.includes(result.code), `exit ${result.code} is not one of ${exit.join(", ")}\n${describeRun(result)}`);
  assertNoStackTrace(result.stderr);
  assert.ok(result.peakRssKb < MAX_PEAK_RSS_KB, `peak RSS ${(result.peakRssKb / 1024).toFixed(0)} MB >= ${MAX_PEAK_RSS_KB / 1024} MB`);
  return result;
}

/** `inspect <file>`: nothing on stdout, exactly one stderr line naming the file and the code. */
async function expectInspectLine(file: string, exit: number, code: string): Promise<void> {
  const result = await runBounded(["inspect", file], exit);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, `expected one line on stderr:\n${result.stderr}`);
  assert.ok(lines[0]!.startsWith(`ckptguard: ${file}: ${code}: `), `expected "${code}" on stderr:\n${result.stderr}`);
}

interface JsonProblem { code: string; severity: string; message: string }
interface JsonReport { path: string; verdict: string; problems: JsonProblem[] }

/** `verify --json <path>`: one report, not valid, holding an error of `code`; stderr empty. */
async function expectVerifyProblem(path: string, exit: number, code: string): Promise<JsonReport> {
  const result = await runBounded(["verify", "--json", path], exit);
  assert.equal(result.stderr, "", "verify --json reports problems in its JSON, not on stderr");
  let output: { files: JsonReport[] };
  try {
    output = JSON.parse(result.stdout) as { files: JsonReport[] };
  } catch {
    assert.fail(`stdout is not JSON:\n${describeRun(result)}`);
  }
  assert.equal(output.files.length, 1);
  const report = output.files[0]!;
  assert.notEqual(report.verdict, "valid");
  const codes = report.problems.map((p) => p.code);
  assert.ok(report.problems.some((p) => p.code === code && p.severity === "error"), `expected ${code} among ${codes.join(", ")}`);
  assertDeclaredCodes(codes);
  return report;
}


/** Every code a report carries is one of codes.ts, the stable list the README documents. */
function assertDeclaredCodes(codes: readonly string[]): void {
  const undeclared = codes.filter((code) => !(code in PROBLEM_CODES));
  assert.deepEqual(undeclared, [], `problem codes missing from src/verify/codes.ts: ${undeclared.join(", ")}`);
}

// ----- the cases ----------------------------------------------------------------------

interface BadInput {
  /** What the input is, for the test title. */
  input: string;
  file: string;
  /** Expected problem code from `verify --json`, and from `inspect` when `inspectCode` is not given. */
  code: string;
  /** `inspect` reads without checking CRCs or sizes, so some defects only `verify` sees. */
  inspectCode?: string | null;
  /** Marks a case failing because of a bug in src/ (see the reason). */
  todo?: string;
}

const CASES: BadInput[] = [
  { input: "a missing path", file: "no-such-file.pt", code: "NOT_FOUND" },
  { input: "an empty directory", file: "empty-dir", code: "NO_CHECKPOINTS", inspectCode: "IS_A_DIRECTORY" },
  { input: "a directory holding only a FIFO named model.pt", file: "dir-with-fifo", code: "NO_CHECKPOINTS", inspectCode: "IS_A_DIRECTORY" },
  { input: "a FIFO", file: "fifo", code: "NOT_A_FILE" },
  { input: "a character device (/dev/zero)", file: "/dev/zero", code: "NOT_A_FILE" },
  { input: "a 10 GiB sparse file of zeros", file: "sparse-zeros.pt", code: "NOT_A_CHECKPOINT" },
  { input: "a 10 GiB sparse file starting with random bytes", file: "sparse-random.pt", code: "NOT_A_CHECKPOINT" },
  // A zip with no end records is what a save killed half-way leaves: TRUNCATED, not NOT_A_CHECKPOINT.
  { input: "a 10 GiB sparse file starting with a zip local header", file: "sparse-zip-head.pt", code: "TRUNCATED" },
  { input: "a 10 GiB sparse file starting like a legacy pickle", file: "sparse-legacy-head.pt", code: "PICKLE_MALFORMED" },
  { input: "a 10 GiB sparse file whose safetensors header claims 9 GiB", file: "sparse-safetensors-head.safetensors", code: "SAFETENSORS_MALFORMED" },
  { input: "a torch zip whose stored storage member claims 50 GiB", file: "claims-50g-storage-stored.pt", code: "MEMBER_OUT_OF_BOUNDS", inspectCode: null },
  { input: "a torch zip whose deflated storage member claims 50 GiB", file: "claims-50g-storage-deflated.pt", code: "DEFLATE_BOMB", inspectCode: null },
  { input: "a torch zip whose stored data.pkl claims 50 GiB", file: "claims-50g-pickle-stored.pt", code: "MEMBER_OUT_OF_BOUNDS" },
  { input: "a torch zip whose deflated data.pkl claims 50 GiB", file: "claims-50g-pickle-deflated.pt", code: "DEFLATE_BOMB" },
  { input: "a torch zip whose storage member inflates 200 MiB of zeros but records 64 KiB", file: "bomb-storage.pt", code: "SIZE_MISMATCH", inspectCode: null },
  { input: "a torch zip whose data.pkl inflates 200 MiB of zeros but records 64 KiB", file: "bomb-pickle.pt", code: "SIZE_MISMATCH" },
  { input: "a torch zip whose data.pkl declares a 4 GiB BINUNICODE8 string", file: "huge-string.pt", code: "TRUNCATED" },
  { input: "a raw pickle (0x80 0x02) of a list nested 100,000 deep", file: "nested-list.pt", code: "NESTING_TOO_DEEP" },
  { input: "a torch zip whose data.pkl is a list nested 100,000 deep", file: "nested-list-zip.pt", code: "NESTING_TOO_DEEP" },
  { input: "a torch zip whose data.pkl is a dict nested 100,000 deep", file: "nested-dict-zip.pt", code: "NESTING_TOO_DEEP" },
  {
    input: "a torch zip whose data.pkl has a dict key that is a tuple nested 100,000 deep",
    file: "deep-tuple-key-zip.pt",
    code: "NESTING_TOO_DEEP",
  },
  ...RANDOM_FILES.map(({ seed, size }) => ({
    input: `${size} random bytes (mulberry32 seed ${seed})`,
    file: randomFileName(seed, size),
    code: "NOT_A_CHECKPOINT",
  })),
];

describe("bad input", () => {
  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "bad-input-"));
    await writeInputs();
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("the CLI: one clear line, exact exit code, no stack, no hang, bounded memory", () => {
    it("has GNU time to measure peak RSS with", () => {
      assert.equal(gnuTimeMissing(), undefined, gnuTimeMissing());
    });

    for (const c of CASES) {
      const path = (): string => (c.file.startsWith("/") ? c.file : at(c.file));
      const options = c.todo !== undefined ? { todo: c.todo } : {};
      it(`verify --json reports ${c.code} for ${c.input} and exits 1`, options, async () => {
        await expectVerifyProblem(path(), 1, c.code);
      });
      if (c.inspectCode !== null) {
        const code = c.inspectCode ?? c.code;
        it(`inspect prints one ${code} line for ${c.input} and exits 1`, options, async () => {
          await expectInspectLine(path(), 1, code);
        });
      }
    }

    // Pickles Python loads at once, so torch.load would too: a verdict of valid (0) or a
    // refusal (1) are both fair answers; hanging is not.
    const SLOW_PICKLES: Array<{ input: string; file: string }> = [
      {
        input: "a torch zip whose data.pkl is one 1 MiB LONG4 integer",
        file: "long-integer-zip.pt",
      },
      {
        input: "a torch zip whose 456-byte data.pkl shares lists 50 levels deep (2^50 leaves through the memo)",
        file: "shared-lists-zip.pt",
      },
      {
        input: "a torch zip whose 200 KB data.pkl nests 998 deep, then holds 100,000 references to one empty list",
        file: "deep-then-wide-zip.pt",
      },
    ];
    for (const c of SLOW_PICKLES) {
      it(`verify --json answers within 2 s of CPU for ${c.input}`, async () => {
        await runBounded(["verify", "--json", at(c.file)], [0, 1]);
      });
    }

    it("inspect prints one IS_A_DIRECTORY line for a directory holding a checkpoint and exits 1", async () => {
      await expectInspectLine(at("dir-with-checkpoint"), 1, "IS_A_DIRECTORY");
    });

    it("verify without --json names NOT_FOUND on stdout, writes no stack, and exits 1", async () => {
      const file = at("no-such-file.pt");
      const result = await runBounded(["verify", file], 1);
      assert.ok(result.stdout.includes(`${file}: NOT_FOUND: `), result.stdout);
    });

    it("verify --json reports PERMISSION_DENIED for a file mode 000 and exits 1", { skip: IS_ROOT ? "running as root, which chmod 000 does not deny" : false }, async () => {
      await expectVerifyProblem(at("unreadable.pt"), 1, "PERMISSION_DENIED");
    });

    it("inspect prints one PERMISSION_DENIED line for a file mode 000 and exits 1", { skip: IS_ROOT ? "running as root, which chmod 000 does not deny" : false }, async () => {
      await expectInspectLine(at("unreadable.pt"), 1, "PERMISSION_DENIED");
    });

    describe("usage errors exit 2 with one line and no stack", () => {
      const usageCases: Array<[string, string[]]> = [
        ["verify with no path", ["verify"]],
        ["an unknown flag", ["verify", "--no-such-flag", "x.pt"]],
        ["an unknown command", ["no-such-command"]],
        ["inspect with no file", ["inspect"]],
      ];
      for (const [what, args] of usageCases) {
        it(`names the mistake on the first stderr line for ${what}`, async () => {
          const result = await runBounded(args, 2);
          assert.equal(result.stdout, "");
          assert.match(result.stderr.split("\n")[0] ?? "", /^error: /);
        });
        it(`prints exactly one stderr line for ${what}`, async () => {
          const result = await runBounded(args, 2);
          assert.equal(result.stderr.split("\n").filter((line) => line !== "").length, 1, result.stderr);
        });
      }
    });
  });

  describe("the library on every strict prefix of a real checkpoint", () => {
    for (const name of ["small.pt", "small-legacy.pt"]) {
      it(`never calls a prefix of torch-written ${name} valid, and never throws`, async () => {
        const whole = await readFile(at(name));
        assert.ok(whole.length < 2048, `${name} is ${whole.length} bytes`);
        const cut = at(`cut-${name}`);
        const seen = new Set<string>();
        for (let length = 0; length < whole.length; length++) {
          await writeFile(cut, whole.subarray(0, length));
          const report = await verifyWithinCpuLimit(cut, `${name} cut to ${length} of ${whole.length} bytes`);
          assert.notEqual(report.verdict, "valid", `${name} cut to ${length} of ${whole.length} bytes is called valid`);
          for (const p of report.problems) seen.add(p.code);
        }
        assertDeclaredCodes([...seen]);
        const { report } = await verifyFile(at(name));
        assert.equal(report.verdict, "valid", "the whole file is valid");
      });
    }
  });

  describe("the library on random bytes behind real signatures", () => {
    const PREFIXES: Array<[string, Buffer]> = [
      ["none", Buffer.alloc(0)],
      ["zip local header", Buffer.from("PK\x03\x04", "latin1")],
      ["zip end record", Buffer.from("PK\x05\x06", "latin1")],
      ["pickle protocol 2", Buffer.from([0x80, 0x02])],
      ["pickle protocol 4", Buffer.from([0x80, 0x04])],
      ["safetensors length and brace", Buffer.from([0x10, 0, 0, 0, 0, 0, 0, 0, 0x7b])],
    ];
    const SIZES = [0, 1, 9, 64, 1000, 65_536];
    const SEED = 20240601;
    it(`never throws, hangs or says valid (mulberry32 seed ${SEED})`, async () => {
      const random = mulberry32(SEED);
      const file = at("random-behind-signature.bin");
      const seen = new Set<string>();
      for (const [label, prefix] of PREFIXES) {
        for (const size of SIZES) {
          for (let round = 0; round < 5; round++) {
            const bytes = Buffer.concat([prefix, randomBuffer(random, size)]);
            await writeFile(file, bytes);
            const what = `prefix ${label}, ${size} random bytes, round ${round}`;
            const report = await verifyWithinCpuLimit(file, what);
            if (bytes.length > 0) assert.notEqual(report.verdict, "valid", `${what} is called valid`);
            for (const p of report.problems) seen.add(p.code);
          }
        }
      }
      assertDeclaredCodes([...seen]);
    });
  });
});
