/** Sharded layouts: one checkpoint split over the files of a directory. */
export { detectShardedDir, type ShardedLayout } from "./detect.js";
export { readDcpMetadata, DCP_METADATA_FILE, DCP_SHARD_NAME, type DcpMetadata, type DcpEntry, type DcpChunk, type DcpStorageItem } from "./dcp.js";
export { readHfIndex, impliedShardPattern, HF_INDEX_NAME, type HfIndex } from "./hf-index.js";
export { shardNameProblem } from "./shard-path.js";
