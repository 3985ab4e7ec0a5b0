/**
 * `ckptguard run` preflight: each failure is one line and exit 1 before the command starts.
 * Unwritable and full directories are made for real: a path under a regular file, and
 * (where `mount -t tmpfs` works, as root in CI) a read-only tmpfs and a 1 MiB tmpfs.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../helpers/torch.js";
import { fixture, scratchDir } from "../helpers/supervised.js";

let dir = "";
const mounts: string[] = [];
/** A launch record the command would write: it must never appear when preflight fails. */
let record = "";
const command = (): string[] => ["node", fixture("exit-with.mjs"), "0", "0", record];

function tryMount(target: string, options: string): boolean {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", target], { stdio: "ignore" });
    mounts.push(target);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  dir = await scratchDir("preflight");
  record = join(dir, "launched.jsonl");
});
after(async () => {
  for (const target of mounts.reverse()) execFileSync("umount", [target]);
  await rm(dir, { recursive: true, force: true });
});

/** Asserts one line on stderr naming `code`, exit 1, and that the command never ran. */
function assertRefused(result: { code: number | null; stderr: string }, code: string): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, new RegExp(`^ckptguard: .*${code}: `));
  assert.equal(existsSync(record), false, "the command must not start");
}

describe("ckptguard run preflight", () => {
  it("passes with --check-only on a fresh directory, creating it, and starts nothing", async () => {
    const target = join(dir, "new", "ckpt");
    const result = await runCli(["run", "--dir", target, "--check-only", "--", ...command()]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^preflight ok: .* writable, .* free \(need 0 B\), command \/.*node/);
    assert.ok(existsSync(target));
    assert.equal(existsSync(record), false);
  });

  it("refuses a directory that cannot be created (a path under a regular file)", async () => {
    await writeFile(join(dir, "a-file"), "not a directory");
    assertRefused(await runCli(["run", "--dir", join(dir, "a-file", "ckpt"), "--", ...command()]), "DIR_NOT_WRITABLE");
    assertRefused(await runCli(["run", "--dir", join(dir, "a-file"), "--", ...command()]), "DIR_NOT_WRITABLE");
  });

  it("refuses a read-only directory (read-only tmpfs)", async (t) => {
    const target = join(dir, "ro");
    await mkdir(target);
    if (!tryMount(target, "ro,size=1m")) return t.skip("mount -t tmpfs is not permitted here");
    const result = await runCli(["run", "--dir", target, "--", ...command()]);
    assertRefused(result, "DIR_NOT_WRITABLE");
    assert.match(result.stderr, /EROFS/);
  });

  it("refuses a full disk (1 MiB tmpfs, filled) and one without room for 3 more checkpoints", async (t) => {
    const full = join(dir, "full");
    await mkdir(full);
    if (!tryMount(full, "size=1m")) return t.skip("mount -t tmpfs is not permitted here");
    await writeFile(join(full, "filler"), Buffer.alloc(1024 * 1024)).catch(() => undefined); // ENOSPC at the end is the point
    assertRefused(await runCli(["run", "--dir", full, "--", ...command()]), "NO_SPACE");

    const tight = join(dir, "tight");
    await mkdir(tight);
    assert.ok(tryMount(tight, "size=1m"));
    await writeFile(join(tight, "ckpt_epoch_0001.pt"), Buffer.alloc(400 * 1024));
    const result = await runCli(["run", "--dir", tight, "--", ...command()]);
    assertRefused(result, "NO_SPACE");
    assert.match(result.stderr, /free, need 1\.23 MB \(room for 3 more checkpoints of 409.6 kB\)/);
  });

  it("refuses when --min-free is more than the free space", async () => {
    const result = await runCli(["run", "--dir", join(dir, "ok"), "--min-free", "900TB", "--", ...command()]);
    assertRefused(result, "NO_SPACE");
    assert.match(result.stderr, /--min-free 900\.0 TB/);
  });

  it("refuses a command that does not exist, on PATH or as a path", async () => {
    const onPath = await runCli(["run", "--dir", join(dir, "ok"), "--", "no-such-trainer-xyz", "--epochs", "3"]);
    assertRefused(onPath, "COMMAND_NOT_FOUND");
    assert.match(onPath.stderr, /no-such-trainer-xyz: COMMAND_NOT_FOUND: the command is not found on PATH/);
    assertRefused(await runCli(["run", "--dir", join(dir, "ok"), "--", "./train-missing.sh"]), "COMMAND_NOT_FOUND");
  });

  it("exits 2 on a usage error: no command, or a value that is not a duration", async () => {
    const noCommand = await runCli(["run", "--dir", join(dir, "ok")]);
    assert.equal(noCommand.code, 2);
    const badGap = await runCli(["run", "--dir", join(dir, "ok"), "--max-gap", "soon", "--", ...command()]);
    assert.equal(badGap.code, 2);
    assert.match(badGap.stderr, /--max-gap: expected a duration .* got "soon"/);
    assert.equal(existsSync(record), false);
  });
});
