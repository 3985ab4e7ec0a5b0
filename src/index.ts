/**
 * ckptguard as a library: everything the CLI does is callable from here.
 *
 * @example
 * ```ts
 * import { verifyPaths } from "ckptguard";
 * const { files, exitCode } = await verifyPaths(["ckpt/"]);
 * ```
 */

/** The one error class; its `code` is a stable problem code. */
export { CkptError, isCkptError, type ErrorLocation } from "./errors.js";

/** Reads any supported checkpoint file into the neutral model (no verdicts). */
export { readCheckpoint } from "./formats/open.js";
export type { ReadOptions } from "./formats/torch.js";
export type {
  CheckpointModel, CheckpointFormat, DType, TensorRecord, StorageRecord, PickleValue, ZipMember, UnsafeGlobalUse,
} from "./formats/model.js";
/** Leaves of the data tree under DESIGN.md's dotted paths. */
export { walkLeaves, getPath, topLevelKeys } from "./formats/tree.js";
/** SHA-256 of a tensor's logical elements, contiguous little-endian. */
export { hashTensor } from "./formats/tensor-hash.js";

/** `inspect`: structure, dtypes, shapes, optional tensor hashes. */
export { inspectCheckpoint, type InspectResult, type InspectOptions } from "./inspect/inspect.js";

/** `verify`: one file, or files and directories with a summary and the exit code. */
export { verifyFile, type VerifyOptions, type Rule } from "./verify/verify-file.js";
export { verifyPaths, type VerifyResult, type VerifySummary } from "./verify/verify-paths.js";
export { collectCheckpointPaths, CHECKPOINT_EXTENSIONS } from "./verify/collect-paths.js";
/** Problem codes with their verdicts and meanings; reports and exit codes. */
export { PROBLEM_CODES, type ProblemCode, type Verdict } from "./verify/codes.js";
export { exitCodeOf, verdictOf, type Report, type Problem } from "./verify/report.js";
