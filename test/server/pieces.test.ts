/** The server's small pure pieces: option checks, loopback names, tokens, run ids, restart history parsing. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCkptError } from "../../src/errors.js";
import { isLoopbackHost, tokensEqual } from "../../src/server/auth.js";
import { parseRestartEvents } from "../../src/server/log-view.js";
import { runId } from "../../src/server/runs.js";
import { checkServeOptions } from "../../src/server/server.js";

describe("checkServeOptions", () => {
  it("defaults to 127.0.0.1:7117 without a token", () => {
    assert.deepEqual(checkServeOptions({}), { host: "127.0.0.1", port: 7117, token: undefined });
  });

  it("refuses a non-loopback host without a token with a USAGE error naming --token", () => {
    for (const host of ["0.0.0.0", "::", "10.0.0.5", "example.com"]) {
      assert.throws(() => checkServeOptions({ host }), (e: unknown) => isCkptError(e) && e.code === "USAGE" && e.message.includes("--token") && e.message.includes(host));
    }
    assert.deepEqual(checkServeOptions({ host: "0.0.0.0", token: "long-enough" }).host, "0.0.0.0");
  });

  it("refuses bad ports and weak tokens", () => {
    for (const port of [-1, 65_536, 1.5, Number.NaN]) assert.throws(() => checkServeOptions({ port }), (e: unknown) => isCkptError(e) && e.code === "USAGE" && e.message.includes("--port"));
    for (const token of ["short", "has space in it", "tab\tinside-it"]) assert.throws(() => checkServeOptions({ token }), (e: unknown) => isCkptError(e) && e.message.includes("--token"));
  });
});

describe("isLoopbackHost", () => {
  it("knows loopback names and addresses", () => {
    for (const host of ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "app.localhost", "::ffff:127.0.0.1"]) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "localhost.evil.example", "127.0.0.1.nip.io", "example.com", ""]) assert.equal(isLoopbackHost(host), false, host);
  });
});

describe("tokensEqual", () => {
  it("compares whole tokens, whatever their lengths", () => {
    assert.equal(tokensEqual("abcdefgh", "abcdefgh"), true);
    for (const given of ["abcdefg", "abcdefghi", "", "ABCDEFGH"]) assert.equal(tokensEqual(given, "abcdefgh"), false, given);
  });
});

describe("runId", () => {
  it("is 12 hex digits, the same for the same path and different for another", () => {
    assert.match(runId("/data/runs/a"), /^[0-9a-f]{12}$/);
    assert.equal(runId("/data/runs/a"), runId("/data/runs/a"));
    assert.notEqual(runId("/data/runs/a"), runId("/data/runs/b"));
  });
});

describe("parseRestartEvents", () => {
  it("reads the supervisor's lines about starts, exits and relaunches and skips everything else", () => {
    const log = [
      "[2026-01-02T03:04:05.000Z] ckptguard: supervising /d (pid 1; run files in /d/.ckptguard)",
      "epoch 1/3 loss 0.5 saved /d/ckpt_epoch_0001.pt",
      "[2026-01-02T03:04:06.000Z] ckptguard: checkpoint ckpt_epoch_0001.pt: valid (epoch 1)",
      "[2026-01-02T03:04:07.000Z] ckptguard: command killed by SIGKILL",
      "[2026-01-02T03:04:07.001Z] ckptguard: restart 1 of 5 in 1.0s",
      "[2026-01-02T03:04:09.000Z] ckptguard: command exited with code 3",
      "[2026-01-02T03:04:09.500Z] ckptguard: cannot start ./train.sh: ENOENT",
      "[not a time] ckptguard: command exited with code 9",
      "ckptguard: command exited with code 1 (a child printing our words, without a time)",
    ];
    assert.deepEqual(parseRestartEvents(log).map((e) => [e.at, e.kind, e.code ?? e.signal ?? null]), [
      ["2026-01-02T03:04:05.000Z", "supervisor", null], ["2026-01-02T03:04:07.000Z", "exit", "SIGKILL"],
      ["2026-01-02T03:04:07.001Z", "restart", null], ["2026-01-02T03:04:09.000Z", "exit", 3], ["2026-01-02T03:04:09.500Z", "exit", null],
    ]);
  });
});
