/** What changes between launches: `{resume}` substitution, the child's environment, backoff; and the units flags are given in. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCkptError } from "../../src/errors.js";
import { backoffDelay, childEnvironment, substituteResume } from "../../src/run/restart.js";
import { formatDuration, parseCount, parseDuration } from "../../src/run/units.js";

describe("substituteResume", () => {
  it("replaces {resume} with the checkpoint path, also inside an argument", () => {
    assert.deepEqual(substituteResume(["train.py", "--resume", "{resume}", "--init={resume}"], "/c/e3.pt"), ["train.py", "--resume", "/c/e3.pt", "--init=/c/e3.pt"]);
  });

  it("drops `--resume {resume}` as a pair on a fresh start", () => {
    assert.deepEqual(substituteResume(["train.py", "--resume", "{resume}", "--epochs", "3"], undefined), ["train.py", "--epochs", "3"]);
  });

  it("drops `--resume={resume}` whole on a fresh start", () => {
    assert.deepEqual(substituteResume(["train.py", "--resume={resume}", "-x"], undefined), ["train.py", "-x"]);
  });

  it("drops only the empty argument when what precedes it is not a flag", () => {
    assert.deepEqual(substituteResume(["train.py", "{resume}"], undefined), ["train.py"]);
  });

  it("keeps an argument that is not empty after substitution (`ckpt:{resume}` -> `ckpt:`)", () => {
    assert.deepEqual(substituteResume(["--from", "ckpt:{resume}"], undefined), ["--from", "ckpt:"]);
  });

  it("leaves arguments without the token untouched", () => {
    assert.deepEqual(substituteResume(["a", "--b", "c"], "/x.pt"), ["a", "--b", "c"]);
  });
});

describe("childEnvironment", () => {
  it("sets CKPTGUARD_RESUME, CKPTGUARD_PROGRESS and CKPTGUARD_DIR", () => {
    const env = childEnvironment({ PATH: "/bin" }, { resume: "/c/e3.pt", progressFile: "/c/.ckptguard/progress.jsonl", dir: "/c" });
    assert.equal(env.CKPTGUARD_RESUME, "/c/e3.pt");
    assert.equal(env.CKPTGUARD_PROGRESS, "/c/.ckptguard/progress.jsonl");
    assert.equal(env.CKPTGUARD_DIR, "/c");
    assert.equal(env.PATH, "/bin");
  });

  it("unsets an inherited CKPTGUARD_RESUME on a fresh start", () => {
    const env = childEnvironment({ CKPTGUARD_RESUME: "/old.pt" }, { resume: undefined, progressFile: "/p", dir: "/c" });
    assert.equal("CKPTGUARD_RESUME" in env, false);
  });
});

describe("backoffDelay", () => {
  it("doubles from the base for each failure in a row and stops at the cap", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 1000, 10_000)), [1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it("waits nothing before the first launch and never overflows", () => {
    assert.equal(backoffDelay(0, 1000, 5000), 0);
    assert.equal(backoffDelay(10_000, 1000, 5000), 5000);
  });
});

describe("units", () => {
  it("parses durations (bare numbers are seconds)", () => {
    assert.deepEqual(["5m", "90s", "500ms", "2h", "1.5s", "30", "1d"].map((t) => parseDuration("--x", t)), [300_000, 90_000, 500, 7_200_000, 1500, 30_000, 86_400_000]);
  });

  it("rejects nonsense with a USAGE error naming the option and the value", () => {
    for (const text of ["soon", "-5s", "5 minutes", ""]) {
      assert.throws(() => parseDuration("--max-gap", text), (e: unknown) => isCkptError(e) && e.code === "USAGE" && e.message.includes("--max-gap") && e.message.includes(JSON.stringify(text)));
    }
    assert.throws(() => parseCount("--keep-last", "0", 1), (e: unknown) => isCkptError(e) && e.code === "USAGE");
    assert.throws(() => parseCount("--keep-last", "2.5"), (e: unknown) => isCkptError(e) && e.code === "USAGE");
  });

  it("formats durations compactly", () => {
    assert.deepEqual([350, 4200, 42_000, 312_000, 7_500_000, 200_000_000].map(formatDuration), ["350ms", "4.2s", "42s", "5m12s", "2h05m", "2d07h"]);
  });
});
