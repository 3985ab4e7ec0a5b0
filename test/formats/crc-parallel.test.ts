/**
 * The parallel CRC pass over one file's stored members: this thread and worker threads claim
 * members from one shared counter, and every member gets its own CRC whoever computed it.
 */
import assert from "node:assert/strict";
import { crc32 } from "@node-rs/crc32";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ZipMember } from "../../src/formats/model.js";
import { crcStoredMembersInParallel } from "../../src/formats/zip/crc-parallel.js";
import { TEST_TMP } from "../helpers/torch.js";

/** Just what the pass reads of a member: where its bytes are and how many. */
function member(name: string, dataOffset: number, size: number): ZipMember {
  return { name, dataOffset, compressedSize: size } as ZipMember;
}

describe("crcStoredMembersInParallel", () => {
  let dir: string;
  let path: string;
  let bytes: Buffer;
  const members: ZipMember[] = [];

  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "crc-parallel-"));
    path = join(dir, "members.bin");
    bytes = randomBytes(10 << 20);
    let at = 64;
    for (const size of [5 << 20, 1 << 20, 0, 3 << 20, 12_345]) {
      members.push(member(`m${members.length}`, at, size));
      at += size;
    }
    await writeFile(path, bytes);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const expected = (m: ZipMember): { crc: number; read: number } =>
    ({ crc: crc32(bytes.subarray(m.dataOffset, m.dataOffset + m.compressedSize)), read: m.compressedSize });

  for (const [threads, shareThisThread] of [[1, true], [2, true], [3, true], [2, false], [3, false]] as const) {
    it(`gives every member its own CRC with ${threads} thread(s)${shareThisThread ? "" : ", workers only"}`, async () => {
      let progressed = 0;
      const crcs = await crcStoredMembersInParallel(path, members, threads, (n) => { progressed += n; }, 0, shareThisThread);
      assert.deepEqual(members.map((m) => crcs.get(m)), members.map(expected));
      assert.equal(progressed, members.reduce((sum, m) => sum + m.compressedSize, 0));
    });
  }

  it("reads a window of the file at its base offset", async () => {
    const window = members.map((m) => member(m.name, m.dataOffset - 64, m.compressedSize));
    const crcs = await crcStoredMembersInParallel(path, window, 2, () => undefined, 64, false);
    assert.deepEqual(window.map((m) => crcs.get(m)), members.map(expected));
  });
});
