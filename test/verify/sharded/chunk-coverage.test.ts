/** How DCP chunks must tile a global tensor: exactly once, inside it. Pure geometry, no files. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DcpChunk } from "../../../src/formats/sharded/dcp.js";
import { chunkCoverageProblems } from "../../../src/verify/sharded/chunk-coverage.js";

function coverage(size: number[], chunks: DcpChunk[]): string[] {
  return chunkCoverageProblems({ kind: "tensor", fqn: "t", dtype: "float32", size, chunks }, ".metadata").map((p) => p.message);
}

const chunk = (offsets: number[], sizes: number[]): DcpChunk => ({ offsets, sizes });

describe("chunkCoverageProblems", () => {
  it("accepts chunks that tile the tensor exactly once (rows, columns, a grid, 0-d, empty)", () => {
    assert.deepEqual(coverage([8, 3], [chunk([0, 0], [4, 3]), chunk([4, 0], [4, 3])]), []);
    assert.deepEqual(coverage([2, 9], [chunk([0, 0], [2, 3]), chunk([0, 3], [2, 3]), chunk([0, 6], [2, 3])]), []);
    assert.deepEqual(coverage([4, 4], [chunk([0, 0], [2, 2]), chunk([0, 2], [2, 2]), chunk([2, 0], [2, 2]), chunk([2, 2], [2, 2])]), []);
    assert.deepEqual(coverage([], [chunk([], [])]), []);
    assert.deepEqual(coverage([0, 3], []), []);
    assert.deepEqual(coverage([5, 3], [chunk([0, 0], [5, 3]), chunk([5, 0], [0, 3])]), [], "an empty chunk at the end (uneven ChunkShardingSpec) is fine");
  });

  it("reports overlapping chunks, naming both", () => {
    const problems = coverage([8, 3], [chunk([0, 0], [5, 3]), chunk([4, 0], [4, 3])]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /\[0:5, 0:3\] and \[4:8, 0:3\] overlap/);
    assert.equal(coverage([4, 4], [chunk([0, 0], [2, 4]), chunk([0, 2], [4, 2]), chunk([2, 0], [2, 2])]).length, 1, "grid overlap found across the sweep");
    assert.equal(coverage([], [chunk([], []), chunk([], [])]).length, 1, "a 0-d tensor stored twice");
  });

  it("does not call chunks that only touch an overlap", () => {
    assert.deepEqual(coverage([4, 4], [chunk([0, 0], [4, 2]), chunk([0, 2], [4, 2])]), []);
  });

  it("reports the elements no chunk holds", () => {
    assert.match(coverage([8, 3], [chunk([0, 0], [4, 3])])[0]!, /hold 12 of the tensor's 24 elements/);
    assert.match(coverage([8, 3], [])[0]!, /hold 0 of the tensor's 24 elements/);
  });

  it("reports chunks outside the tensor or of another rank", () => {
    assert.match(coverage([8, 3], [chunk([0, 0], [4, 3]), chunk([4, 0], [5, 3])])[0]!, /reaches past/);
    assert.match(coverage([8, 3], [chunk([0], [8])])[0]!, /has 1 dimensions, the tensor 2/);
  });

  it("lists at most five overlapping pairs, then counts the rest", () => {
    const same = Array.from({ length: 5 }, () => chunk([0], [4]));
    const problems = coverage([4], same);
    assert.equal(problems.length, 6);
    assert.match(problems[5]!, /and 5 more overlapping chunk pairs/);
  });
});
