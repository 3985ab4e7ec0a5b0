/**
 * The CRC threads a sharded checkpoint's streams share: answers keyed to their members
 * whatever order jobs finish in, a job whose file is gone fails alone, and a closed pool
 * refuses work instead of hanging.
 */
import assert from "node:assert/strict";
import { crc32 } from "@node-rs/crc32";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isCkptError } from "../../src/errors.js";
import type { ZipMember } from "../../src/formats/model.js";
import { CrcPool } from "../../src/formats/zip.js";
import { TEST_TMP } from "../helpers/torch.js";

/** Just what the pool reads of a member: where its bytes are and how many. */
function member(name: string, dataOffset: number, size: number): ZipMember {
  return { name, dataOffset, compressedSize: size } as ZipMember;
}

describe("CrcPool", () => {
  let dir: string;
  const files: Array<{ path: string; bytes: Buffer }> = [];

  before(async () => {
    await mkdir(TEST_TMP, { recursive: true });
    dir = await mkdtemp(join(TEST_TMP, "crc-pool-"));
    for (const size of [5 << 20, 1 << 20, 3 << 20, 12_345]) {
      const path = join(dir, `f${files.length}.bin`);
      const bytes = randomBytes(size);
      await writeFile(path, bytes);
      files.push({ path, bytes });
    }
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("gives each member the CRC-32 of its own bytes when many jobs over several files are in flight at once", async () => {
    const pool = CrcPool.start(2);
    try {
      const jobs = files.map(({ path, bytes }) => {
        const members = [member("a", 0, 1000), member("b", 1000, bytes.length - 2000), member("c", bytes.length - 1000, 1000)];
        return { bytes, members, answer: pool.crcMembers(path, members) };
      });
      for (const { bytes, members, answer } of jobs) {
        const crcs = await answer;
        for (const m of members) {
          assert.deepEqual(crcs.get(m), { crc: crc32(bytes.subarray(m.dataOffset, m.dataOffset + m.compressedSize)), read: m.compressedSize });
        }
      }
    } finally {
      await pool.close();
    }
  });

  it("reads at base + offset, for a zip that starts inside its file (a DCP item)", async () => {
    const pool = CrcPool.start(1);
    try {
      const { path, bytes } = files[1]!;
      const m = member("data/0", 100, 4096);
      const crcs = await pool.crcMembers(path, [m], 5000);
      assert.equal(crcs.get(m)?.crc, crc32(bytes.subarray(5100, 5100 + 4096)));
    } finally {
      await pool.close();
    }
  });

  it("fails only the job whose file is gone (UNREADABLE) and keeps serving the others", async () => {
    const pool = CrcPool.start(1);
    try {
      const gone = pool.crcMembers(join(dir, "deleted.distcp"), [member("x", 0, 10)]);
      const fine = pool.crcMembers(files[3]!.path, [member("y", 0, 10)]);
      await assert.rejects(gone, (error) => isCkptError(error) && error.code === "UNREADABLE");
      assert.equal((await fine).size, 1);
    } finally {
      await pool.close();
    }
  });

  it("refuses work once closed", async () => {
    const pool = CrcPool.start(1);
    await pool.close();
    await assert.rejects(pool.crcMembers(files[0]!.path, [member("z", 0, 10)]), (error) => isCkptError(error) && error.code === "UNREADABLE");
  });
});
