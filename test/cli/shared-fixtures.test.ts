/**
 * The shared fixtures written by real PyTorch 1.13: what `inspect` reads must equal what
 * torch itself read (expected.json), and `verify` must give each file its verdict.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { runCli } from "../helpers/torch.js";

const FIXTURES = "../shared/fixtures/torch";
const expected = JSON.parse(readFileSync(`${FIXTURES}/expected.json`, "utf8")) as Record<string, { torch_load?: string; top_level_keys?: string[]; entries?: Record<string, unknown> }>;

interface VerifyJson {
  files: Array<{ path: string; format: string; verdict: string; problems: Array<{ code: string; severity: string; message: string; where: Record<string, unknown> }> }>;
  summary: { valid: number; invalid: number; unsafe: number };
}

async function verifyJson(file: string): Promise<{ code: number | null; doc: VerifyJson }> {
  const result = await runCli(["verify", "--json", `${FIXTURES}/${file}`]);
  return { code: result.code, doc: JSON.parse(result.stdout) as VerifyJson };
}

describe("inspect --json --tensor-hash on torch's own files", () => {
  for (const [file, truth] of Object.entries(expected)) {
    if (file === "_about" || truth.entries === undefined) continue;
    it(`reads ${file} exactly as torch.load does`, async () => {
      const result = await runCli(["inspect", "--json", "--tensor-hash", `${FIXTURES}/${file}`]);
      assert.equal(result.code, 0, result.stderr);
      const doc = JSON.parse(result.stdout) as { top_level_keys: string[]; entries: Record<string, unknown> };
      assert.deepEqual(doc.top_level_keys, truth.top_level_keys);
      assert.deepEqual(doc.entries, truth.entries);
    });
  }
});

describe("verify verdicts on the shared fixtures", () => {
  for (const file of ["train_adam_v1.pt", "train_adam_legacy.pt", "dtypes_views.pt", "missing_optimizer.pt"]) {
    it(`says ${file} is valid and exits 0`, async () => {
      const { code, doc } = await verifyJson(file);
      assert.equal(doc.files[0]?.verdict, "valid", JSON.stringify(doc.files[0]?.problems));
      assert.deepEqual(doc.files[0]?.problems, []);
      assert.equal(code, 0);
    });
  }

  it("says malicious_system_call.pt is unsafe, names posix.system, and exits 3", async () => {
    const { code, doc } = await verifyJson("malicious_system_call.pt");
    const report = doc.files[0]!;
    assert.equal(report.verdict, "unsafe");
    const unsafe = report.problems.filter((p) => p.code === "UNSAFE_GLOBAL");
    assert.ok(unsafe.some((p) => p.message.includes("posix.system")), JSON.stringify(unsafe));
    assert.equal(doc.summary.unsafe, 1);
    assert.equal(code, 3);
  });

  it("reports CRC_MISMATCH naming train_adam_v1/data/10 when a tensor byte flips", async () => {
    const { code, doc } = await verifyJson("bitflip_tensor_data.pt");
    const report = doc.files[0]!;
    assert.equal(report.verdict, "corrupt");
    const crc = report.problems.filter((p) => p.code === "CRC_MISMATCH");
    assert.deepEqual(crc.map((p) => p.where.member), ["train_adam_v1/data/10"]);
    assert.equal(code, 1);
  });

  const failures: Array<[string, string, string]> = [
    ["truncated_half.pt", "TRUNCATED", "corrupt"],
    ["empty.pt", "EMPTY_FILE", "corrupt"],
    ["not_a_checkpoint.pt", "NOT_A_CHECKPOINT", "unreadable"],
  ];
  for (const [file, code, verdict] of failures) {
    it(`reports ${code} (${verdict}) for ${file} and exits 1`, async () => {
      const result = await verifyJson(file);
      const report = result.doc.files[0]!;
      assert.equal(report.verdict, verdict);
      assert.deepEqual(report.problems.map((p) => p.code), [code]);
      assert.equal(result.code, 1);
    });
  }

  it("verifies the whole fixture directory with one summary line and exit 3", async () => {
    const result = await runCli(["verify", FIXTURES]);
    assert.equal(result.code, 3);
    assert.match(result.stdout, /^9 checked: 4 valid, 3 corrupt, 1 unsafe, 1 unreadable$/m);
    assert.equal(result.stderr, "");
  });

  it("inspect exits 3 and warns on stderr for the malicious file, without executing it", async () => {
    const result = await runCli(["inspect", `${FIXTURES}/malicious_system_call.pt`]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /UNSAFE_GLOBAL.*posix\.system/);
  });
});
