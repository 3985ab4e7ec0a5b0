import type { DcpChunk, DcpEntry } from "../../formats/sharded/dcp.js";
import { problem, type Problem } from "../report.js";

/** Overlapping pairs named one by one per tensor before the rest are only counted. */
const MAX_OVERLAPS_LISTED = 5;

type TensorEntry = Extract<DcpEntry, { kind: "tensor" }>;

/**
 * SHARD_COVERAGE when a global tensor's chunks do not tile it exactly once: a chunk of
 * another rank or reaching past the tensor, two chunks sharing elements, or elements no
 * chunk holds. In-bounds chunks that never overlap tile the tensor exactly when their
 * volumes add up to its volume, so holes need no per-element bookkeeping.
 */
export function chunkCoverageProblems(entry: TensorEntry, metadataName: string): Problem[] {
  const out: Problem[] = [];
  const where = { member: metadataName, path: entry.fqn };
  const inside: DcpChunk[] = [];
  for (const chunk of entry.chunks) {
    if (chunk.offsets.length !== entry.size.length || chunk.sizes.length !== entry.size.length) {
      out.push(problem("SHARD_COVERAGE", `${entry.fqn}: chunk ${box(chunk)} has ${chunk.offsets.length} dimensions, the tensor ${entry.size.length}`, where));
    } else if (chunk.offsets.some((offset, d) => offset + chunk.sizes[d]! > entry.size[d]!)) {
      out.push(problem("SHARD_COVERAGE", `${entry.fqn}: chunk ${box(chunk)} reaches past the tensor's size [${entry.size.join(", ")}]`, where));
    } else if (volume(chunk.sizes) > 0) {
      inside.push(chunk);
    }
  }
  const overlaps = overlappingPairs(inside);
  for (const [a, b] of overlaps.slice(0, MAX_OVERLAPS_LISTED)) {
    out.push(problem("SHARD_COVERAGE", `${entry.fqn}: chunks ${box(a)} and ${box(b)} overlap (the same elements are stored twice)`, where));
  }
  if (overlaps.length > MAX_OVERLAPS_LISTED) {
    out.push(problem("SHARD_COVERAGE", `${entry.fqn}: ... and ${overlaps.length - MAX_OVERLAPS_LISTED} more overlapping chunk pairs`, where));
  }
  const stored = inside.reduce((sum, chunk) => sum + volume(chunk.sizes), 0);
  const total = volume(entry.size);
  // With overlaps the sum over-counts, so only a shortfall is then certain.
  if ((overlaps.length === 0 && stored !== total) || stored < total) {
    out.push(problem("SHARD_COVERAGE", `${entry.fqn}: its chunks hold ${stored} of the tensor's ${total} elements (size [${entry.size.join(", ")}]): the rest were never saved`, where));
  }
  return out;
}

/** Sweep along dimension 0 so only chunks whose first-dimension ranges meet are compared. */
function overlappingPairs(chunks: readonly DcpChunk[]): Array<[DcpChunk, DcpChunk]> {
  const pairs: Array<[DcpChunk, DcpChunk]> = [];
  if (chunks.length > 0 && chunks[0]!.offsets.length === 0) {
    // 0-d tensor: every chunk is the one element.
    for (let i = 1; i < chunks.length; i++) pairs.push([chunks[0]!, chunks[i]!]);
    return pairs;
  }
  const sorted = [...chunks].sort((a, b) => a.offsets[0]! - b.offsets[0]!);
  let active: DcpChunk[] = [];
  for (const chunk of sorted) {
    active = active.filter((other) => other.offsets[0]! + other.sizes[0]! > chunk.offsets[0]!);
    for (const other of active) if (intersects(other, chunk)) pairs.push([other, chunk]);
    active.push(chunk);
  }
  return pairs;
}

function intersects(a: DcpChunk, b: DcpChunk): boolean {
  return a.offsets.every((start, d) => start < b.offsets[d]! + b.sizes[d]! && b.offsets[d]! < start + a.sizes[d]!);
}

function volume(sizes: readonly number[]): number {
  return sizes.reduce((product, size) => product * size, 1);
}

/** `[0:4, 0:3]`: the chunk as the slice of the tensor it holds. */
export function box(chunk: DcpChunk): string {
  return `[${chunk.offsets.map((offset, d) => `${offset}:${offset + (chunk.sizes[d] ?? 0)}`).join(", ")}]`;
}
