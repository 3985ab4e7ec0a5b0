/** `--min-size`/`--max-size` and `--accept-version`. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { isCkptError } from "../../src/errors.js";
import { parseSize } from "../../src/verify/size-limits.js";
import { parseVersionRange } from "../../src/verify/versions.js";
import { contentCheckpoints, verifyJson } from "../helpers/content.js";

const TRAIN = "../shared/fixtures/torch/train_adam_v1.pt"; // 23,9xx bytes
const LEGACY = "../shared/fixtures/torch/train_adam_legacy.pt";
let dir = "";
before(async () => {
  dir = await contentCheckpoints();
});

describe("parseSize", () => {
  const cases: Array<[string, number]> = [
    ["10MB", 10_000_000], ["1.5GiB", 1.5 * 2 ** 30], ["4096", 4096], ["512B", 512], ["20kB", 20_000], ["20KB", 20_000],
    ["2KiB", 2048], ["1TB", 1e12], ["3 MiB", 3 * 2 ** 20], ["0.5gb", 5e8],
  ];
  for (const [text, bytes] of cases) {
    it(`reads ${JSON.stringify(text)} as ${bytes} bytes`, () => assert.equal(parseSize(text), bytes));
  }
  for (const bad of ["", "ten", "10M", "-5MB", "10 parsecs", "1e6"]) {
    it(`refuses ${JSON.stringify(bad)}, naming the option and the value`, () => {
      assert.throws(() => parseSize(bad, "--max-size"), (error: unknown) => isCkptError(error) && error.code === "USAGE" && error.message.startsWith(`--max-size ${JSON.stringify(bad)}`));
    });
  }
});

describe("verify --min-size / --max-size", () => {
  it("passes a file inside the limits", async () => {
    const { code, files } = await verifyJson(["--min-size", "10kB", "--max-size", "1MiB", TRAIN]);
    assert.deepEqual(files[0]!.problems, []);
    assert.equal(code, 0);
  });

  it("reports FILE_TOO_SMALL below --min-size 10MB, and exits 1", async () => {
    const { code, files } = await verifyJson(["--min-size", "10MB", TRAIN]);
    const [p] = files[0]!.problems;
    assert.equal(p?.code, "FILE_TOO_SMALL");
    assert.equal(p?.details?.min, 10_000_000);
    assert.equal(files[0]!.verdict, "incomplete");
    assert.equal(code, 1);
  });

  it("reports FILE_TOO_LARGE above --max-size", async () => {
    const { files } = await verifyJson(["--max-size", "1kB", TRAIN]);
    assert.deepEqual(files[0]!.problems.map((p) => p.code), ["FILE_TOO_LARGE"]);
  });

  it("exits 2 on an ambiguous size or min above max", async () => {
    assert.equal((await verifyJson(["--min-size", "10M", TRAIN])).code, 2);
    assert.equal((await verifyJson(["--min-size", "2GB", "--max-size", "1GB", TRAIN])).code, 2);
  });
});

describe("verify --accept-version", () => {
  it("reports FUTURE_VERSION (incompatible) for pytorch-lightning_version 9.0.0 under \"<3\", and exits 1", async () => {
    const { code, files } = await verifyJson(["--accept-version", "<3", `${dir}/lightning.ckpt`]);
    const report = files[0]!;
    assert.equal(report.verdict, "incompatible");
    assert.deepEqual(report.problems.map((p) => [p.code, p.where.path, p.details?.version]), [["FUTURE_VERSION", "pytorch-lightning_version", "9.0.0"]]);
    assert.equal(code, 1);
  });

  it("accepts an older version with an OLD_VERSION note, and exits 0", async () => {
    const { code, files } = await verifyJson(["--accept-version", ">=2 <3", `${dir}/lightning_old.ckpt`]);
    assert.equal(files[0]!.verdict, "valid");
    assert.deepEqual(files[0]!.problems.map((p) => [p.code, p.severity, p.details?.version]), [["OLD_VERSION", "info", "1.5.0"]]);
    assert.equal(code, 0);
  });

  it("notes that a legacy-format file was read by the legacy reader", async () => {
    const { code, files } = await verifyJson(["--accept-version", "<3", LEGACY]);
    assert.deepEqual(files[0]!.problems.map((p) => [p.code, p.severity]), [["OLD_VERSION", "info"]]);
    assert.equal(code, 0);
  });

  it("says nothing about versions without the option", async () => {
    const { files } = await verifyJson([`${dir}/lightning.ckpt`, LEGACY]);
    assert.deepEqual(files.map((f) => f.problems), [[], []]);
  });

  it("refuses a range semver cannot parse", async () => {
    assert.throws(() => parseVersionRange("newest"), (error: unknown) => isCkptError(error) && error.code === "USAGE" && error.message.includes('--accept-version "newest"'));
    assert.equal((await verifyJson(["--accept-version", "newest", TRAIN])).code, 2);
  });
});
