/** Verifying sharded checkpoint directories (DCP, HF index + shards) as one checkpoint each. */
export { verifyShardedDir, type ShardedOutcome } from "./verify-sharded-dir.js";
export { chunkCoverageProblems } from "./chunk-coverage.js";
