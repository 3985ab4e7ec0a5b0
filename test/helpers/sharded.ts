/**
 * Sharded checkpoints written by real torch (test/python/make_sharded.py): DCP directories saved
 * by two gloo processes, and HF-style sharded safetensors/.bin with their index. Each test copies
 * the directory it damages, so one generation serves a whole test file.
 */
import { cp, mkdir, mkdtemp, open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { FileSource } from "../../src/formats/file-source.js";
import { readCheckpoint, readSource } from "../../src/formats/open.js";
import { REPO_ROOT, runPython, TEST_TMP } from "./torch.js";

export type ShardedKind = "dcp" | "hf";

export interface ShardedCheckpoints {
  /** Holds `dcp/`, `dcp-single/`, `dcp-unsafe/`, ... and `hf-safetensors/`, `hf-bin/`, ... as asked. */
  dir: string;
  /** What the script printed: entry sizes, chunk counts and file names of the DCP save, the HF weight maps. */
  summary: any;
}

/** Runs make_sharded.py into a fresh directory under test/tmp/. The caller removes `dir`. */
export async function makeShardedCheckpoints(kinds: readonly ShardedKind[]): Promise<ShardedCheckpoints> {
  await mkdir(TEST_TMP, { recursive: true });
  const dir = await mkdtemp(join(TEST_TMP, `sharded-${kinds.join("-")}-`));
  const result = await runPython(join(REPO_ROOT, "test/python/make_sharded.py"), [dir, ...kinds], 120_000);
  if (result.code !== 0) throw new Error(`make_sharded.py ${dir} ${kinds.join(" ")} exited with ${result.code ?? result.signal}:\n${result.stderr}`);
  return { dir, summary: JSON.parse(result.stdout) };
}

/** A fresh copy of `generated.dir/name` to damage; lives inside generated.dir. */
export async function copyOf(generated: ShardedCheckpoints, name: string): Promise<string> {
  const target = await mkdtemp(join(generated.dir, `case-${name}-`));
  await cp(join(generated.dir, name), target, { recursive: true });
  return target;
}

/** Inverts the byte at `offset`. */
export async function flipByte(path: string, offset: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

/** Cuts a file to `fraction` of its size, as a copy or save killed midway leaves it. */
export async function truncateTo(path: string, fraction: number, size: number): Promise<void> {
  await truncate(path, Math.floor(size * fraction));
}

/**
 * Offset of the first tensor byte of a torch.save stream (to flip a byte of tensor data, not of
 * the structure): of the whole file, or of the stream at [start, start + length) of it (a DCP item),
 * relative to `start`.
 */
export async function firstTensorByte(path: string, start?: number, length?: number): Promise<number> {
  let model;
  if (start === undefined || length === undefined) {
    model = await readCheckpoint(path, { checkCrc: false });
  } else {
    const file = await FileSource.open(path, (await stat(path)).size);
    try {
      model = await readSource(file.window(start, length, "item"), { checkCrc: false });
    } finally {
      await file.close();
    }
  }
  const offset = model.storages.find((s) => s.bytes !== undefined && s.bytes.length > 0)?.bytes?.offset;
  if (offset === undefined) throw new Error(`${path} holds no tensor bytes`);
  return offset;
}
