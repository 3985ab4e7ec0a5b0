/** `ckptguard python-path`: one absolute path, the folder a Python script puts on PYTHONPATH. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { it } from "node:test";

import { REPO_ROOT, runCli } from "../helpers/torch.js";

it("prints the absolute path of the shipped python/ folder and nothing else", async () => {
  const result = await runCli(["python-path"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const lines = result.stdout.split("\n");
  assert.deepEqual(lines.slice(1), [""]);
  const dir = lines[0] ?? "";
  assert.ok(isAbsolute(dir), dir);
  assert.equal(dir, join(REPO_ROOT, "python"));
  assert.ok(existsSync(join(dir, "ckptguard", "__init__.py")));
  assert.ok(existsSync(join(dir, "pyproject.toml")));
});

it("names a folder from which Python imports the companion", async () => {
  const dir = (await runCli(["python-path"])).stdout.trim();
  // Any Python 3.9+ will do: importing the package needs no torch.
  const out = execFileSync("python3", ["-c", "import ckptguard; print(ckptguard.__file__)"], {
    encoding: "utf8", env: { ...process.env, PYTHONPATH: dir, PYTHONDONTWRITEBYTECODE: "1" },
  });
  assert.equal(out.trim(), join(dir, "ckptguard", "__init__.py"));
});
