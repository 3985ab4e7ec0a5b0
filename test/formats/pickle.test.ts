/**
 * The pickle machine against pickles written by CPython itself, protocols 0-5, and
 * against hand-made hostile streams. Nothing here ever runs pickle code.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { genericReducers, REFERENCE_ONLY } from "../../src/formats/pickle/allowlist.js";
import { readPickle, type PickleResult } from "../../src/formats/pickle/machine.js";
import { walkLeaves } from "../../src/formats/tree.js";
import { valueEntry } from "../../src/inspect/entry-json.js";
import { isCkptError } from "../../src/errors.js";
import { TORCH_PYTHON } from "../helpers/torch.js";

const options = { stream: "test", reducers: genericReducers(), referenceOnly: REFERENCE_ONLY };

/** Pickles `expr` with CPython at `protocol` and returns the bytes. */
function pythonPickle(expr: string, protocol: number): Buffer {
  const code = `import pickle, sys, collections, argparse\nsys.stdout.buffer.write(pickle.dumps(${expr}, protocol=${protocol}))`;
  return execFileSync(TORCH_PYTHON, ["-c", code]);
}

function leaves(result: PickleResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const leaf of walkLeaves(result.value)) if (leaf.kind === "value") out[leaf.path] = valueEntry(leaf.value);
  return out;
}

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (isCkptError(error)) return error.code;
    throw error;
  }
  return undefined;
}

const SAMPLE = `{"i": 1, "neg": -70000, "big": 2**70, "f": 0.1, "s": "héllo", "b": b"xy", "t": (1, (2, 3)), "none": None, "yes": True, "no": False, "l": [1, "a", [2]], 7: "int key", "od": collections.OrderedDict([("a", 1)]), "ns": argparse.Namespace(lr=0.5), "set": {3}, "fs": frozenset([4]), "c": complex(1, -2)}`;

describe("readPickle on CPython's own pickles", () => {
  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    it(`reads every value kind at protocol ${protocol} without flagging anything`, () => {
      const result = readPickle(pythonPickle(SAMPLE, protocol), 0, options);
      assert.deepEqual(result.unsafeGlobals, []);
      const got = leaves(result);
      assert.deepEqual(got["i"], { value: 1 });
      assert.deepEqual(got["neg"], { value: -70000 });
      assert.deepEqual(got["big"], { value: "1180591620717411303424" });
      assert.deepEqual(got["f"], { value: 0.1 });
      assert.deepEqual(got["s"], { value: "héllo" });
      assert.deepEqual(got["b"], { bytes: 2 });
      assert.deepEqual(got["t.1.1"], { value: 3 });
      assert.deepEqual(got["none"], { value: null });
      assert.deepEqual(got["yes"], { value: true });
      assert.deepEqual(got["no"], { value: false });
      assert.deepEqual(got["l.2.0"], { value: 2 });
      assert.deepEqual(got["7"], { value: "int key" });
      assert.deepEqual(got["od.a"], { value: 1 });
      assert.deepEqual(got["ns.lr"], { value: 0.5 });
      assert.deepEqual(got["set.0"], { value: 3 });
      assert.deepEqual(got["fs.0"], { value: 4 });
      assert.deepEqual(got["c"], { value: "(1-2j)" });
    });
  }

  it("keeps shared and self-referencing objects finite (memo cycles)", () => {
    const bytes = pythonPickle(`(lambda l: (l.append(l), l)[1])([1])`, 2);
    const result = readPickle(bytes, 0, options);
    assert.deepEqual(leaves(result), { "0": { value: 1 } });
  });
});

describe("readPickle on hostile pickles", () => {
  for (const protocol of [0, 2, 4]) {
    it(`reports UNSAFE_GLOBAL posix.system as a call at protocol ${protocol}`, () => {
      const bytes = pythonPickle(`type("X", (), {"__reduce__": lambda self: (__import__("os").system, ("echo pwned",))})()`, protocol);
      const result = readPickle(bytes, 0, options);
      assert.deepEqual(result.unsafeGlobals.map((u) => [`${u.module}.${u.name}`, u.use]), [["posix.system", "call"]]);
    });
  }

  it("flags builtins.eval, builtins.getattr and subprocess.Popen", () => {
    const bytes = pythonPickle(`[type("A", (), {"__reduce__": lambda s: (eval, ("1",))})(), type("B", (), {"__reduce__": lambda s: (getattr, (1, "real"))})(), type("C", (), {"__reduce__": lambda s: (__import__("subprocess").Popen, (["true"],))})()]`, 4);
    const names = readPickle(bytes, 0, options).unsafeGlobals.map((u) => `${u.module}.${u.name}`);
    assert.deepEqual(names, ["builtins.eval", "builtins.getattr", "subprocess.Popen"]);
  });

  it("refuses a BINUNICODE8 that declares 4 GB in a 20-byte pickle with TRUNCATED", () => {
    const bytes = Buffer.alloc(20);
    bytes.set([0x80, 0x04, 0x8d]);
    bytes.writeBigUInt64LE(4n << 30n, 3);
    assert.equal(thrownCode(() => readPickle(bytes, 0, options)), "TRUNCATED");
  });

  it("reads a list nested 100,000 deep and refuses to walk it with NESTING_TOO_DEEP", () => {
    const depth = 100_000;
    const bytes = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(depth, 0x5d), Buffer.alloc(depth - 1, 0x61), Buffer.from([0x2e])]);
    const result = readPickle(bytes, 0, options);
    assert.equal(thrownCode(() => [...walkLeaves(result.value)]), "NESTING_TOO_DEEP");
  });

  it("reports PICKLE_MALFORMED for an unknown opcode and for stack underflow", () => {
    assert.equal(thrownCode(() => readPickle(Buffer.from([0x80, 0x02, 0xff]), 0, options)), "PICKLE_MALFORMED");
    assert.equal(thrownCode(() => readPickle(Buffer.from([0x80, 0x02, 0x30, 0x2e]), 0, options)), "PICKLE_MALFORMED");
  });

  it("reports TRUNCATED at every cut of a real pickle", () => {
    const bytes = pythonPickle(SAMPLE, 4);
    for (let cut = 0; cut < bytes.length; cut++) {
      const code = thrownCode(() => readPickle(bytes.subarray(0, cut), 0, options));
      assert.ok(code === "TRUNCATED" || code === "PICKLE_MALFORMED", `cut ${cut}: ${code}`);
    }
  });

  it("flags copyreg extension codes, which can name any callable", () => {
    const bytes = Buffer.from([0x80, 0x02, 0x82, 0x07, 0x29, 0x52, 0x2e]); // EXT1 7, (), REDUCE
    const result = readPickle(bytes, 0, options);
    assert.deepEqual(result.unsafeGlobals.map((u) => u.use), ["extension"]);
  });
});
