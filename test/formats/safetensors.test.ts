import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { isCkptError, type CkptError } from "../../src/errors.js";
import { FileSource } from "../../src/formats/file-source.js";
import type { CheckpointModel, PickleDict, TensorRef } from "../../src/formats/model.js";
import { looksLikeSafetensors, readSafetensors } from "../../src/formats/safetensors.js";

const TMP_ROOT = fileURLToPath(new URL("../../../test/tmp/", import.meta.url));
const PYTHON = "/usr/bin/python3";

let dir = "";
before(async () => {
  await mkdir(TMP_ROOT, { recursive: true });
  dir = await mkdtemp(join(TMP_ROOT, "safetensors-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---- a tiny writer, exactly per the safetensors README "Format" -------------------------

interface TensorSpec {
  name: string;
  dtype: string;
  shape: number[];
  data: Buffer;
}

/** Lays tensors out back to back and returns the header object and the byte buffer. */
function layOut(specs: TensorSpec[], metadata?: Record<string, unknown>): { header: Record<string, unknown>; data: Buffer } {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header["__metadata__"] = metadata;
  let offset = 0;
  for (const { name, dtype, shape, data } of specs) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
  }
  return { header, data: Buffer.concat(specs.map((spec) => spec.data)) };
}

/** 8-byte little-endian header length, the JSON header padded with spaces to 8 bytes, the buffer. */
function encode(header: Record<string, unknown> | string, data: Buffer, lengthField?: bigint): Buffer {
  let json = typeof header === "string" ? header : JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(lengthField ?? BigInt(headerBytes.length));
  return Buffer.concat([length, headerBytes, data]);
}

let fileCounter = 0;
async function writeTemp(bytes: Buffer): Promise<string> {
  const path = join(dir, `file-${fileCounter++}.safetensors`);
  await writeFile(path, bytes);
  return path;
}

async function readPath(path: string): Promise<CheckpointModel> {
  const source = await FileSource.open(path, (await stat(path)).size);
  try {
    return await readSafetensors(source);
  } finally {
    await source.close();
  }
}

async function readBytes(bytes: Buffer): Promise<CheckpointModel> {
  return readPath(await writeTemp(bytes));
}

async function readError(bytes: Buffer): Promise<CkptError> {
  try {
    await readBytes(bytes);
  } catch (error) {
    assert.ok(isCkptError(error), `expected a CkptError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the read to throw");
}

function codes(model: CheckpointModel): string[] {
  return model.integrity.defects.map((defect) => defect.code);
}

function f32(...values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}

/** The two-tensor file several cases start from: a [2,2] float32 and a [2] int64. */
function twoTensors(): { header: Record<string, unknown>; data: Buffer } {
  return layOut([
    { name: "w", dtype: "F32", shape: [2, 2], data: f32(1, 2, 3, 4) },
    { name: "b", dtype: "I64", shape: [2], data: Buffer.from(new BigInt64Array([5n, -6n]).buffer) },
  ]);
}

// ---- the cases --------------------------------------------------------------------------

describe("readSafetensors on a valid file", () => {
  const specs: TensorSpec[] = [
    { name: "model.embed.weight", dtype: "F32", shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6) },
    { name: "model.norm.bias", dtype: "BF16", shape: [4], data: Buffer.from([0x80, 0x3f, 0x00, 0x40, 0x40, 0x40, 0x80, 0x40]) },
    { name: "mask", dtype: "BOOL", shape: [3], data: Buffer.from([1, 0, 1]) },
    { name: "step", dtype: "I64", shape: [], data: Buffer.from(new BigInt64Array([42n]).buffer) },
    { name: "empty", dtype: "F16", shape: [0, 3], data: Buffer.alloc(0) },
    { name: "ids", dtype: "U8", shape: [5], data: Buffer.from([9, 8, 7, 6, 5]) },
  ];
  const { header, data } = layOut(specs, { format: "pt", epoch: "3" });
  const bytes = encode(header, data);
  const dataStart = 8 + Number(bytes.readBigUInt64LE(0));
  let model: CheckpointModel;
  let path = "";
  before(async () => {
    path = await writeTemp(bytes);
    model = await readPath(path);
  });

  it("reports no defects and marks CRCs as not checked", () => {
    assert.equal(model.format, "safetensors");
    assert.equal(model.fileSize, bytes.length);
    assert.deepEqual(model.integrity.defects, []);
    assert.equal(model.integrity.crcChecked, false);
    assert.deepEqual(model.members, []);
    assert.deepEqual(model.unsafeGlobals, []);
  });

  it("keeps tensor names with dots as paths, in header order, with torch dtype names and shapes", () => {
    assert.deepEqual(
      model.tensors.map((t) => [t.path, t.dtype, t.shape]),
      [
        ["model.embed.weight", "float32", [2, 3]],
        ["model.norm.bias", "bfloat16", [4]],
        ["mask", "bool", [3]],
        ["step", "int64", []],
        ["empty", "float16", [0, 3]],
        ["ids", "uint8", [5]],
      ],
    );
  });

  it("gives contiguous strides as torch does (a 0-sized dim counts as 1) and storage offset 0", () => {
    assert.deepEqual(
      model.tensors.map((t) => t.stride),
      [[3, 1], [1], [1], [], [3, 1], [1]],
    );
    assert.ok(model.tensors.every((t) => t.storageOffset === 0));
  });

  it("gives each tensor its own little-endian storage at the absolute file offset of its bytes", async () => {
    const file = await readFile(path);
    let begin = 0;
    for (const [i, tensor] of model.tensors.entries()) {
      const spec = specs[i]!;
      assert.deepEqual(tensor.storage, {
        key: spec.name,
        dtype: tensor.dtype,
        bytes: { offset: dataStart + begin, length: spec.data.length },
        byteOrder: "little",
      });
      const range = tensor.storage.bytes!;
      assert.deepEqual(file.subarray(range.offset, range.offset + range.length), spec.data);
      begin += spec.data.length;
    }
    assert.deepEqual(model.storages, model.tensors.map((t) => t.storage));
  });

  it("builds the root as a dict of name -> TensorRef in header order", () => {
    const root = model.root as PickleDict;
    assert.equal(root.kind, "dict");
    assert.deepEqual(root.entries.map(([name]) => name), specs.map((s) => s.name));
    const first = root.entries[0]![1] as TensorRef;
    assert.deepEqual(first, {
      kind: "tensor",
      dtype: "float32",
      shape: [2, 3],
      stride: [3, 1],
      storageOffset: 0,
      storage: model.tensors[0]!.storage,
      requiresGrad: false,
      isParameter: false,
    });
  });

  it("returns __metadata__ as metadata", () => {
    assert.deepEqual(model.metadata, { format: "pt", epoch: "3" });
  });
});

describe("readSafetensors on edge-case headers", () => {
  it("keeps header order even for names that look like integers", async () => {
    const header =
      '{"10":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"2":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},' +
      '"a.b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}';
    const model = await readBytes(encode(header, Buffer.from([1, 2, 3])));
    assert.deepEqual(model.tensors.map((t) => t.path), ["10", "2", "a.b"]);
    assert.deepEqual(model.integrity.defects, []);
  });

  it("reads a header that is only {} as an empty model", async () => {
    const model = await readBytes(encode("{}", Buffer.alloc(0)));
    assert.deepEqual(model.tensors, []);
    assert.deepEqual(model.root, { kind: "dict", entries: [] });
    assert.equal(model.metadata, undefined);
    assert.deepEqual(model.integrity.defects, []);
  });

  it("reads non-ASCII names and points defects at the key's byte offset in the file", async () => {
    const header = '{"ünïcode":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"bad":{"dtype":"U8"}}';
    const bytes = encode(header, Buffer.from([1]));
    const model = await readBytes(bytes);
    assert.deepEqual(model.tensors.map((t) => t.path), ["ünïcode"]);
    assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED", "SAFETENSORS_MALFORMED"]);
    assert.equal(model.integrity.defects[0]!.offset, bytes.indexOf('"bad"'));
  });

  it("reports SAFETENSORS_MALFORMED when a name appears twice, using the last entry once", async () => {
    const header =
      '{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}';
    const model = await readBytes(encode(header, Buffer.from([1, 2])));
    assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED"]);
    assert.deepEqual(model.tensors.map((t) => [t.path, t.dtype, t.shape]), [["x", "int8", [2]]]);
  });

  it("reports SAFETENSORS_MALFORMED when __metadata__ holds a non-string, keeping the strings", async () => {
    const { header, data } = twoTensors();
    const model = await readBytes(encode({ __metadata__: { format: "pt", epoch: 3 }, ...header }, data));
    assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED"]);
    assert.deepEqual(model.metadata, { format: "pt" });
    assert.equal(model.tensors.length, 2);
  });

  it("reports SAFETENSORS_MALFORMED when __metadata__ is not an object", async () => {
    const { header, data } = twoTensors();
    const model = await readBytes(encode({ __metadata__: ["pt"], ...header }, data));
    assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED"]);
    assert.equal(model.metadata, undefined);
  });
});

describe("readSafetensors on a truncated file", () => {
  const { header, data } = layOut(
    [
      { name: "a", dtype: "F32", shape: [3], data: f32(1, 2, 3) },
      { name: "e", dtype: "F32", shape: [0], data: Buffer.alloc(0) },
      { name: "b", dtype: "BF16", shape: [2, 2], data: Buffer.alloc(8, 0x3f) },
      { name: "c", dtype: "U8", shape: [5], data: Buffer.from([1, 2, 3, 4, 5]) },
    ],
    { format: "pt" },
  );
  const full = encode(header, data);
  const dataStart = 8 + Number(full.readBigUInt64LE(0));

  it("never yields a model without TRUNCATED and STORAGE_OUT_OF_BOUNDS, whatever byte it is cut at", async () => {
    for (let cut = 1; cut < full.length; cut++) {
      const bytes = full.subarray(0, cut);
      let model: CheckpointModel;
      try {
        model = await readBytes(bytes);
      } catch (error) {
        assert.ok(isCkptError(error), `cut at ${cut}: ${String(error)}`);
        assert.equal(error.code, "TRUNCATED", `cut at ${cut}`);
        assert.ok(cut < dataStart, `cut at ${cut} is inside the buffer yet the read threw`);
        continue;
      }
      assert.ok(cut >= dataStart, `cut at ${cut} is inside the header yet a model was read`);
      assert.ok(codes(model).includes("TRUNCATED"), `cut at ${cut}: ${codes(model).join(",")}`);
      assert.ok(codes(model).includes("STORAGE_OUT_OF_BOUNDS"), `cut at ${cut}: ${codes(model).join(",")}`);
      assert.ok(!codes(model).includes("SAFETENSORS_GAP"), `cut at ${cut}: a cut is not a gap`);
    }
  });

  it("reports STORAGE_OUT_OF_BOUNDS for exactly the tensors past the cut and still lists every tensor", async () => {
    const cut = dataStart + 12 + 3; // inside "b"
    const model = await readBytes(full.subarray(0, cut));
    const outOfBounds = model.integrity.defects.filter((d) => d.code === "STORAGE_OUT_OF_BOUNDS");
    assert.deepEqual(outOfBounds.map((d) => d.offset), [dataStart + 12, dataStart + 20]);
    assert.deepEqual(model.integrity.defects.find((d) => d.code === "TRUNCATED")?.offset, cut);
    assert.deepEqual(model.tensors.map((t) => t.path), ["a", "e", "b", "c"]);
  });

  it("throws TRUNCATED when the file is shorter than the 8-byte length field", async () => {
    assert.equal((await readError(full.subarray(0, 5))).code, "TRUNCATED");
  });
});

describe("readSafetensors on a header length it cannot trust", () => {
  it("throws TRUNCATED, without allocating, when the length claims 4 GB before a JSON header", async () => {
    const { header, data } = twoTensors();
    const error = await readError(encode(header, data, 4n * 1024n ** 3n));
    assert.equal(error.code, "TRUNCATED");
    assert.equal(error.where.offset, 0);
  });

  it("throws NOT_A_CHECKPOINT when the length is impossible and no JSON follows (a zip file)", async () => {
    const zipStart = Buffer.from("504b0304140000000800a1b2c3d4e5f60718293a4b5c6d7e8f", "hex");
    assert.equal((await readError(zipStart)).code, "NOT_A_CHECKPOINT");
  });

  it("throws NOT_A_CHECKPOINT for plain text", async () => {
    assert.equal((await readError(Buffer.from("hello world, this is not a checkpoint\n"))).code, "NOT_A_CHECKPOINT");
  });

  it("throws SAFETENSORS_MALFORMED when the header is over the reference reader's 100,000,000-byte limit", async () => {
    const path = join(dir, "huge-header.safetensors");
    await writeFile(path, encode("{", Buffer.alloc(0), 100_000_001n));
    const handle = await open(path, "r+");
    await handle.truncate(100_000_200); // sparse: the length fits in the file, only the limit refuses it
    await handle.close();
    const source = await FileSource.open(path, (await stat(path)).size);
    await assert.rejects(readSafetensors(source), (error) => isCkptError(error) && error.code === "SAFETENSORS_MALFORMED");
    await source.close();
    await rm(path);
  });
});

describe("readSafetensors on a header that is not JSON", () => {
  it("throws SAFETENSORS_MALFORMED when the header starts with { but is not JSON", async () => {
    const error = await readError(encode('{"w": {"dtype": "F32", oops', Buffer.alloc(0)));
    assert.equal(error.code, "SAFETENSORS_MALFORMED");
    assert.equal(error.where.offset, 8);
    assert.ok(!error.message.includes("\n"));
  });

  it("throws NOT_A_CHECKPOINT when the header does not start with {", async () => {
    assert.equal((await readError(encode("[1, 2, 3]", Buffer.alloc(0)))).code, "NOT_A_CHECKPOINT");
    assert.equal((await readError(encode(' {"a": 1}', Buffer.alloc(0)))).code, "NOT_A_CHECKPOINT");
  });

  it("throws SAFETENSORS_MALFORMED when the header is not valid UTF-8", async () => {
    const bytes = encode('{"w?": {}}', Buffer.alloc(0));
    bytes[11] = 0xff;
    assert.equal((await readError(bytes)).code, "SAFETENSORS_MALFORMED");
  });
});

describe("readSafetensors on a header whose entries are wrong", () => {
  it("reports TENSOR_OVERLAP when two tensors share bytes, and still reads both", async () => {
    const header = {
      w: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      v: { dtype: "F32", shape: [4], data_offsets: [8, 24] },
    };
    const model = await readBytes(encode(header, Buffer.alloc(24)));
    assert.deepEqual(codes(model), ["TENSOR_OVERLAP"]);
    const dataStart = model.tensors[0]!.storage.bytes!.offset;
    assert.equal(model.integrity.defects[0]!.offset, dataStart + 8);
    assert.deepEqual(model.tensors.map((t) => t.path), ["w", "v"]);
  });

  it("reports SAFETENSORS_GAP when bytes between two tensors belong to neither", async () => {
    const header = {
      w: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      v: { dtype: "F32", shape: [4], data_offsets: [20, 36] },
    };
    const model = await readBytes(encode(header, Buffer.alloc(36)));
    assert.deepEqual(codes(model), ["SAFETENSORS_GAP"]);
    assert.equal(model.integrity.defects[0]!.offset, model.tensors[0]!.storage.bytes!.offset + 16);
  });

  it("reports SAFETENSORS_GAP when the buffer has unused bytes after the last tensor", async () => {
    const { header, data } = twoTensors();
    const model = await readBytes(encode(header, Buffer.concat([data, Buffer.alloc(3)])));
    assert.deepEqual(codes(model), ["SAFETENSORS_GAP"]);
    assert.equal(model.tensors.length, 2);
  });

  it("reports TENSOR_SIZE_MISMATCH when data_offsets do not span numel * element size, keeping the tensor", async () => {
    const header = { w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 12] } };
    const model = await readBytes(encode(header, Buffer.alloc(12)));
    assert.deepEqual(codes(model), ["TENSOR_SIZE_MISMATCH"]);
    assert.deepEqual(model.tensors[0]!.storage.bytes?.length, 12);
  });

  it("reports SAFETENSORS_MALFORMED for an unknown dtype, leaves that tensor out and reads the others", async () => {
    const { header, data } = twoTensors();
    (header["w"] as Record<string, unknown>)["dtype"] = "F128";
    const model = await readBytes(encode(header, data));
    assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED"]); // its bytes still count: no SAFETENSORS_GAP
    assert.deepEqual(model.tensors.map((t) => t.path), ["b"]);
    assert.deepEqual((model.root as PickleDict).entries.map(([name]) => name), ["b"]);
    assert.deepEqual(model.storages.map((s) => s.key), ["b"]);
  });

  it("reports SAFETENSORS_MALFORMED for a shape that is not a list of non-negative integers", async () => {
    for (const shape of [[-1, 4], ["2", 2], [1.5], 4, null]) {
      const { header, data } = twoTensors();
      (header["w"] as Record<string, unknown>)["shape"] = shape;
      const model = await readBytes(encode(header, data));
      assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED"], JSON.stringify(shape));
      assert.deepEqual(model.tensors.map((t) => t.path), ["b"]);
    }
  });

  it("reports SAFETENSORS_MALFORMED for data_offsets that are not [begin, end] with begin <= end", async () => {
    for (const offsets of [[16, 0], [0], [0, 16, 32], ["0", "16"], [-4, 12], undefined]) {
      const { header, data } = twoTensors();
      (header["w"] as Record<string, unknown>)["data_offsets"] = offsets;
      const model = await readBytes(encode(header, data));
      assert.equal(codes(model)[0], "SAFETENSORS_MALFORMED", JSON.stringify(offsets));
      assert.deepEqual(model.tensors.map((t) => t.path), ["b"]);
    }
  });

  it("reports SAFETENSORS_MALFORMED for an entry that is not an object", async () => {
    const { header, data } = twoTensors();
    const model = await readBytes(encode({ ...header, odd: "F32" }, data));
    assert.deepEqual(codes(model), ["SAFETENSORS_MALFORMED"]);
    assert.deepEqual(model.tensors.map((t) => t.path), ["w", "b"]);
  });

  it("reports STORAGE_OUT_OF_BOUNDS and TRUNCATED when an offset points past the end of the file", async () => {
    const { header, data } = twoTensors();
    (header["b"] as Record<string, unknown>)["data_offsets"] = [16, 2 ** 40];
    const model = await readBytes(encode(header, data));
    assert.ok(codes(model).includes("STORAGE_OUT_OF_BOUNDS"));
    assert.ok(codes(model).includes("TRUNCATED"));
  });
});

describe("looksLikeSafetensors", () => {
  const { header, data } = twoTensors();
  const bytes = encode(header, data);

  it("recognises a safetensors file from its first bytes", () => {
    assert.equal(looksLikeSafetensors(bytes.subarray(0, 64), bytes.length), true);
  });

  it("refuses a header length longer than the file, a zip, text and a too-short head", () => {
    assert.equal(looksLikeSafetensors(encode(header, data, 4n * 1024n ** 3n), bytes.length), false);
    assert.equal(looksLikeSafetensors(Buffer.from("504b030414000000080000", "hex"), 1000), false);
    assert.equal(looksLikeSafetensors(Buffer.from("hello world, plain text"), 23), false);
    assert.equal(looksLikeSafetensors(bytes.subarray(0, 8), bytes.length), false);
  });
});

describe("readSafetensors on a file written from real torch tensors", () => {
  const hasTorch = existsSync(PYTHON) && spawnsTorch();

  it("reads the dtypes, shapes and bytes Python wrote", { skip: hasTorch ? false : "no torch at /usr/bin/python3" }, async () => {
    const path = join(dir, "torch.safetensors");
    const written = JSON.parse(execFileSync(PYTHON, ["-c", TORCH_WRITER, path], { encoding: "utf8" })) as Record<
      string,
      { dtype: string; shape: number[]; hex: string }
    >;
    const model = await readPath(path);
    const file = await readFile(path);
    assert.deepEqual(model.integrity.defects, []);
    assert.deepEqual(model.metadata, { format: "pt" });
    assert.deepEqual(
      model.tensors.map((t) => [t.path, t.dtype, t.shape]),
      Object.entries(written).map(([name, t]) => [name, t.dtype, t.shape]),
    );
    for (const tensor of model.tensors) {
      const { offset, length } = tensor.storage.bytes!;
      assert.equal(file.subarray(offset, offset + length).toString("hex"), written[tensor.path]!.hex, tensor.path);
    }
  });
});

function spawnsTorch(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Writes safetensors from torch tensors with json + struct and prints what it wrote. */
const TORCH_WRITER = `
import json, struct, sys, torch
torch.manual_seed(0)
tensors = {
    "encoder.layers.0.weight": torch.randn(3, 4),
    "encoder.layers.0.bias": torch.randn(4).to(torch.bfloat16),
    "half": torch.randn(2, 2).half(),
    "double": torch.randn(2).double(),
    "step": torch.tensor(7),
    "flags": torch.tensor([True, False, True]),
    "bytes": torch.arange(5, dtype=torch.uint8),
    "small": torch.arange(-3, 3, dtype=torch.int8),
    "i16": torch.arange(4, dtype=torch.int16),
    "i32": torch.arange(4, dtype=torch.int32).reshape(2, 2),
    "empty": torch.empty(0, 3),
    "c64": torch.randn(2, dtype=torch.complex64),
    "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
}
names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
         torch.int64: "I64", torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8",
         torch.int16: "I16", torch.int32: "I32", torch.complex64: "C64"}
def raw(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()
header = {"__metadata__": {"format": "pt"}}
data = b""
for name, t in tensors.items():
    b = raw(t)
    header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
print(json.dumps({n: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "hex": raw(t).hex()}
                  for n, t in tensors.items()}))
`;
