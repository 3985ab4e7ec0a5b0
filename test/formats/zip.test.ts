import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { deflateRawSync } from "node:zlib";
import { isCkptError } from "../../src/errors.js";
import { FileSource } from "../../src/formats/file-source.js";
import { emptyIntegrity, type IntegrityFacts } from "../../src/formats/model.js";
import { readMember, readZipDirectory, verifyMemberCrcs, type ZipDirectory } from "../../src/formats/zip.js";
import { buildZip, type ZipSpec } from "../helpers/zip-builder.js";

const FIXTURES = "../shared/fixtures/torch";
const fixture = (name: string): string => join(FIXTURES, name);
const MiB = 1024 * 1024;

let tmp = "";
before(async () => {
  await mkdir("test/tmp", { recursive: true });
  tmp = await mkdtemp(join("test/tmp", "zip-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function withSource<T>(path: string, use: (source: FileSource) => Promise<T>): Promise<T> {
  const source = await FileSource.open(path, (await stat(path)).size);
  try {
    return await use(source);
  } finally {
    await source.close();
  }
}

let written = 0;
async function writeZip(spec: ZipSpec, edit?: (bytes: Buffer) => Buffer | void): Promise<string> {
  const { bytes } = buildZip(spec);
  const path = join(tmp, `built-${written++}.zip`);
  await writeFile(path, edit?.(bytes) ?? bytes);
  return path;
}

async function writeBytes(bytes: Buffer): Promise<string> {
  const path = join(tmp, `built-${written++}.zip`);
  await writeFile(path, bytes);
  return path;
}

/** Reads the directory and verifies every CRC, as `verify` does. */
async function check(path: string): Promise<{ directory: ZipDirectory; facts: IntegrityFacts; ms: number }> {
  return withSource(path, async (source) => {
    const started = performance.now();
    const directory = await readZipDirectory(source);
    const facts = emptyIntegrity();
    facts.defects.push(...directory.defects);
    await verifyMemberCrcs(source, directory.members, facts);
    return { directory, facts, ms: performance.now() - started };
  });
}

async function readNamed(path: string, name: string, maxBytes = 64 * MiB): Promise<Buffer> {
  return withSource(path, async (source) => {
    const directory = await readZipDirectory(source);
    const member = directory.members.find((m) => m.name === name);
    assert.ok(member, `member ${name} exists`);
    return readMember(source, member, maxBytes);
  });
}

function codeOf(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isCkptError(error), `expected a CkptError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

const defectCodes = (facts: { defects: Array<{ code: string; member?: string }> }, member: string): string[] =>
  facts.defects.filter((d) => d.member === member).map((d) => d.code);

describe("readZipDirectory on torch checkpoints", () => {
  it("lists every member of a torch zip, zip64 end records and 64-byte aligned data, with no defects", async () => {
    const { directory } = await check(fixture("train_adam_v1.pt"));
    assert.equal(directory.members.length, 29);
    assert.equal(directory.isZip64, true);
    assert.deepEqual(directory.defects, []);
    const pickle = directory.members.find((m) => m.name === "train_adam_v1/data.pkl");
    assert.deepEqual(pickle && { method: pickle.method, size: pickle.uncompressedSize, dataOffset: pickle.dataOffset },
      { method: 0, size: 2299, dataOffset: 64 });
    for (const member of directory.members) assert.equal(member.dataOffset % 64, 0, member.name);
  });

  it("throws TRUNCATED when the file is cut before its end-of-central-directory record", async () => {
    await withSource(fixture("truncated_half.pt"), async (source) => {
      await assert.rejects(readZipDirectory(source), codeOf("TRUNCATED"));
    });
  });

  for (const name of ["empty.pt", "not_a_checkpoint.pt"]) {
    it(`throws NOT_A_CHECKPOINT for ${name}`, async () => {
      await withSource(fixture(name), async (source) => {
        await assert.rejects(readZipDirectory(source), codeOf("NOT_A_CHECKPOINT"));
      });
    });
  }
});

describe("verifyMemberCrcs on torch checkpoints", () => {
  it("finds every CRC right in a valid checkpoint and marks the CRCs checked", async () => {
    const { facts } = await check(fixture("train_adam_v1.pt"));
    assert.deepEqual(facts, { crcMismatches: [], sizeMismatches: [], defects: [], crcChecked: true });
  });

  it("reports CRC_MISMATCH naming only the member whose tensor byte flipped", async () => {
    const { facts } = await check(fixture("bitflip_tensor_data.pt"));
    assert.deepEqual(facts.crcMismatches.map((m) => m.member), ["train_adam_v1/data/10"]);
    assert.equal(facts.crcMismatches[0]?.expected, 0xb768749c);
    assert.deepEqual([facts.sizeMismatches, facts.defects], [[], []]);
  });

  it("finds the same single CRC_MISMATCH when the stored members are split over worker threads", async () => {
    for (const [file, expected] of [["train_adam_v1.pt", []], ["bitflip_tensor_data.pt", ["train_adam_v1/data/10"]]] as const) {
      await withSource(fixture(file), async (source) => {
        const directory = await readZipDirectory(source);
        const facts = emptyIntegrity();
        await verifyMemberCrcs(source, directory.members, facts, { workers: 2 });
        assert.deepEqual(facts.crcMismatches.map((m) => m.member), expected);
        assert.deepEqual([facts.sizeMismatches, facts.defects, facts.crcChecked], [[], [], true]);
      });
    }
  });

  it("reports progress ending at the total of the members' bytes", async () => {
    await withSource(fixture("train_adam_v1.pt"), async (source) => {
      const directory = await readZipDirectory(source);
      const calls: Array<[number, number]> = [];
      await verifyMemberCrcs(source, directory.members, emptyIntegrity(), { onProgress: (done, total) => calls.push([done, total]) });
      const total = directory.members.reduce((sum, m) => sum + m.compressedSize, 0);
      assert.deepEqual(calls.at(-1), [total, total]);
    });
  });
});

describe("readMember", () => {
  it("reads the pickle of a torch checkpoint whole", async () => {
    const pickle = await readNamed(fixture("train_adam_v1.pt"), "train_adam_v1/data.pkl");
    assert.equal(pickle.length, 2299);
    assert.deepEqual([pickle[0], pickle[1], pickle.at(-1)], [0x80, 0x02, 0x2e]); // PROTO 2 ... STOP
  });

  it("throws CRC_MISMATCH naming the member when a byte flipped", async () => {
    await assert.rejects(readNamed(fixture("bitflip_tensor_data.pt"), "train_adam_v1/data/10"), (error: unknown) => {
      assert.ok(isCkptError(error));
      assert.deepEqual([error.code, error.where.member], ["CRC_MISMATCH", "train_adam_v1/data/10"]);
      return true;
    });
  });

  it("refuses a member larger than maxBytes with MEMBER_TOO_LARGE", async () => {
    await assert.rejects(readNamed(fixture("train_adam_v1.pt"), "train_adam_v1/data.pkl", 1000), codeOf("MEMBER_TOO_LARGE"));
  });
});

describe("zip container features", () => {
  const text = Buffer.from("tensor bytes and pickle opcodes ".repeat(4000));

  it("round-trips a deflated member through readMember and verifies its CRC", async () => {
    const path = await writeZip({ entries: [{ name: "a/data.pkl", data: text, method: 8 }] });
    assert.deepEqual(await readNamed(path, "a/data.pkl"), text);
    const { directory, facts } = await check(path);
    assert.equal(directory.members[0]?.method, 8);
    assert.ok((directory.members[0]?.compressedSize ?? 0) < text.length / 10);
    assert.deepEqual(facts, { crcMismatches: [], sizeMismatches: [], defects: [], crcChecked: true });
  });

  it("reports a CRC mismatch for a deflated member whose recorded CRC is wrong", async () => {
    const path = await writeZip({ entries: [{ name: "a/data.pkl", data: text, method: 8, central: { crc32: 0x12345678 }, dataDescriptor: true }] });
    const { facts } = await check(path);
    assert.deepEqual(facts.crcMismatches.map((m) => [m.member, m.expected]), [["a/data.pkl", 0x12345678]]);
    await assert.rejects(readNamed(path, "a/data.pkl"), codeOf("CRC_MISMATCH"));
  });

  it("reports DEFLATE_CORRUPT for a deflate stream cut short", async () => {
    const cut = deflateRawSync(randomBytes(100_000)).subarray(0, 50_000);
    const path = await writeZip({ entries: [{ name: "cut", data: Buffer.alloc(100_000), method: 8, rawData: cut }] });
    const { facts } = await check(path);
    assert.deepEqual(defectCodes(facts, "cut"), ["DEFLATE_CORRUPT"]);
    await assert.rejects(readNamed(path, "cut"), codeOf("DEFLATE_CORRUPT"));
  });

  it("reads zip64 end records and zip64 extra fields for sizes and offsets", async () => {
    const path = await writeZip({
      zip64: true,
      entries: [
        { name: "z/stored", data: text, zip64: true, alignTo: 64 },
        { name: "z/deflated", data: text, method: 8, zip64: true },
        { name: "z/described", data: text, zip64: true, dataDescriptor: true },
      ],
    });
    const { directory, facts } = await check(path);
    assert.equal(directory.isZip64, true);
    assert.deepEqual(directory.members.map((m) => [m.name, m.uncompressedSize]),
      [["z/stored", text.length], ["z/deflated", text.length], ["z/described", text.length]]);
    assert.equal((directory.members[0]?.dataOffset ?? 1) % 64, 0);
    assert.deepEqual(facts, { crcMismatches: [], sizeMismatches: [], defects: [], crcChecked: true });
    assert.deepEqual(await readNamed(path, "z/deflated"), text);
  });

  it("accepts data descriptors (zeros in the local header) on stored and deflated members", async () => {
    const spec: ZipSpec = {
      entries: [
        { name: "d/stored", data: text, dataDescriptor: true, alignTo: 64 },
        { name: "d/deflated", data: text, method: 8, dataDescriptor: true },
      ],
    };
    const { layout } = buildZip(spec);
    const { directory, facts } = await check(await writeZip(spec));
    assert.deepEqual(directory.members.map((m) => m.dataOffset), layout.entries.map((e) => e.dataOffset));
    assert.deepEqual(facts, { crcMismatches: [], sizeMismatches: [], defects: [], crcChecked: true });
  });

  it("reads the archive comment and an archive with no members", async () => {
    const commented = await check(await writeZip({ entries: [{ name: "x", data: text }], comment: "made by a test" }));
    assert.equal(commented.directory.comment, "made by a test");
    const empty = await check(await writeZip({ entries: [] }));
    assert.deepEqual([empty.directory.members, empty.directory.defects, empty.facts.crcChecked], [[], [], true]);
  });

  it("checks a member spanning several read chunks, catching a flip on either side of a chunk boundary", async () => {
    const big = randomBytes(20 * MiB);
    const small = Array.from({ length: 300 }, (_, i) => ({ name: `s/${i}`, data: randomBytes(i % 7) }));
    const spec: ZipSpec = { entries: [{ name: "big", data: big, alignTo: 64 }, ...small] };
    const { bytes, layout } = buildZip(spec);
    const clean = await check(await writeBytes(bytes));
    assert.deepEqual(clean.facts, { crcMismatches: [], sizeMismatches: [], defects: [], crcChecked: true });
    const boundary = (layout.entries[0]?.dataOffset ?? 0) + 8 * MiB;
    for (const at of [boundary - 1, boundary, boundary + 1]) {
      const flipped = Buffer.from(bytes);
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      const { facts } = await check(await writeBytes(flipped));
      assert.deepEqual(facts.crcMismatches.map((m) => m.member), ["big"], `flip at ${at}`);
    }
  });
});

describe("hostile and damaged zips", () => {
  const payload = Buffer.from("0123456789abcdef".repeat(64));
  const FIFTY_GB = 50e9;

  it("reports MEMBER_OUT_OF_BOUNDS for a stored member claiming 50 GB, and checks the others quickly", async () => {
    const path = await writeZip({
      entries: [
        { name: "ok", data: payload },
        { name: "huge", data: payload, dataDescriptor: true, central: { compressedSize: FIFTY_GB, uncompressedSize: FIFTY_GB } },
      ],
    });
    const { facts, ms } = await check(path);
    assert.deepEqual(defectCodes(facts, "huge"), ["MEMBER_OUT_OF_BOUNDS"]);
    assert.deepEqual([facts.crcMismatches, facts.sizeMismatches, facts.crcChecked], [[], [], true]);
    assert.ok(ms < 1000, `took ${ms} ms`);
    await assert.rejects(readNamed(path, "huge"), codeOf("MEMBER_OUT_OF_BOUNDS"));
  });

  it("reports DEFLATE_BOMB up front for a deflated member claiming 50 GB, without inflating it", async () => {
    const path = await writeZip({ entries: [{ name: "bomb", data: payload, method: 8, dataDescriptor: true, central: { uncompressedSize: FIFTY_GB } }] });
    const { facts, ms } = await check(path);
    assert.deepEqual(defectCodes(facts, "bomb"), ["DEFLATE_BOMB"]);
    assert.deepEqual([facts.crcMismatches, facts.sizeMismatches], [[], []]);
    assert.ok(ms < 1000, `took ${ms} ms`);
    await assert.rejects(readNamed(path, "bomb", Number.MAX_SAFE_INTEGER), codeOf("DEFLATE_BOMB"));
  });

  it("stops inflating a real deflate bomb at its recorded size and reports a size mismatch", async () => {
    const zeros = Buffer.alloc(20 * MiB);
    const path = await writeZip({ entries: [{ name: "bomb", data: zeros, method: 8, dataDescriptor: true, central: { uncompressedSize: 1024 } }] });
    const { facts, ms } = await check(path);
    const [mismatch] = facts.sizeMismatches;
    assert.equal(facts.sizeMismatches.length, 1);
    assert.deepEqual([mismatch?.member, mismatch?.expected, mismatch?.reason], ["bomb", 1024, "inflates past its recorded size (deflate bomb?)"]);
    assert.ok((mismatch?.actual ?? 0) > 1024 && (mismatch?.actual ?? Infinity) < 2 * MiB, `stopped after ${mismatch?.actual} bytes`);
    assert.deepEqual(facts.defects, []);
    assert.ok(ms < 1000, `took ${ms} ms`);
    await assert.rejects(readNamed(path, "bomb"), codeOf("SIZE_MISMATCH"));
  });

  it("reports MEMBER_OVERLAP for a member whose range reuses another member's bytes", async () => {
    const { layout } = buildZip({ entries: [{ name: "a", data: payload }, { name: "b", data: payload }] });
    const path = await writeZip({
      entries: [{ name: "a", data: payload }, { name: "b", data: payload, central: { localHeaderOffset: layout.entries[0]?.localHeaderOffset ?? 0 } }],
    });
    const { facts } = await check(path);
    assert.ok(defectCodes(facts, "b").includes("MEMBER_OVERLAP"), JSON.stringify(facts.defects));
    assert.deepEqual(defectCodes(facts, "a"), []);
  });

  it("reports LOCAL_HEADER_MISMATCH when the local header names another member", async () => {
    const path = await writeZip({ entries: [{ name: "archive/data.pkl", data: payload, local: { name: "archive/evil.pkl" } }] });
    const { facts } = await check(path);
    assert.deepEqual(defectCodes(facts, "archive/data.pkl"), ["LOCAL_HEADER_MISMATCH"]);
  });

  it("reports LOCAL_HEADER_MISMATCH for a local CRC that differs, unless a data descriptor carries it", async () => {
    const lying = await check(await writeZip({ entries: [{ name: "m", data: payload, local: { crc32: 1 } }] }));
    assert.deepEqual(defectCodes(lying.facts, "m"), ["LOCAL_HEADER_MISMATCH"]);
    const described = await check(await writeZip({ entries: [{ name: "m", data: payload, dataDescriptor: true }] }));
    assert.deepEqual(described.facts.defects, []);
  });

  it("reports LOCAL_HEADER_MISMATCH when the central directory points at no local header", async () => {
    const path = await writeZip({ entries: [{ name: "m", data: payload, central: { localHeaderOffset: 5 } }] });
    const { facts } = await check(path);
    assert.deepEqual(defectCodes(facts, "m"), ["LOCAL_HEADER_MISMATCH"]);
  });

  it("reports UNSUPPORTED_COMPRESSION for a method other than stored or deflate and skips its CRC", async () => {
    const path = await writeZip({ entries: [{ name: "bz", data: payload, central: { method: 12 }, local: { method: 12 } }] });
    const { facts } = await check(path);
    assert.deepEqual([defectCodes(facts, "bz"), facts.crcMismatches], [["UNSUPPORTED_COMPRESSION"], []]);
  });

  it("throws TRUNCATED when the central directory extends beyond the file", async () => {
    const { bytes, layout } = buildZip({ entries: [{ name: "m", data: payload }] });
    bytes.writeUInt32LE(bytes.length, layout.eocdOffset + 12);
    await withSource(await writeBytes(bytes), async (source) => {
      await assert.rejects(readZipDirectory(source), codeOf("TRUNCATED"));
    });
  });

  it("throws ZIP_MALFORMED when the entry count cannot fit in the central directory", async () => {
    const { bytes, layout } = buildZip({ entries: [{ name: "m", data: payload }] });
    bytes.writeUInt16LE(60000, layout.eocdOffset + 10);
    await withSource(await writeBytes(bytes), async (source) => {
      await assert.rejects(readZipDirectory(source), codeOf("ZIP_MALFORMED"));
    });
  });

  it("throws ZIP_MALFORMED for a central directory entry without its signature", async () => {
    const { bytes, layout } = buildZip({ entries: [{ name: "m", data: payload }, { name: "n", data: payload }] });
    bytes.writeUInt32LE(0, layout.entries[1]?.centralHeaderOffset ?? 0);
    await withSource(await writeBytes(bytes), async (source) => {
      await assert.rejects(readZipDirectory(source), (error: unknown) => {
        assert.ok(isCkptError(error));
        assert.deepEqual([error.code, error.where.offset], ["ZIP_MALFORMED", layout.entries[1]?.centralHeaderOffset]);
        return true;
      });
    });
  });
});
