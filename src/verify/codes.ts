/**
 * Every problem code ckptguard reports, with the verdict it implies and what it means.
 * This table is the single source of truth: reports derive verdicts from it and the
 * README's code list is checked against it by a test.
 */

export type Verdict = "valid" | "corrupt" | "unsafe" | "incomplete" | "incompatible" | "unreadable";
export type Severity = "error" | "warning" | "info";

interface CodeInfo {
  /** Verdict an error of this code gives the file (warnings and notes never change it). */
  verdict: Exclude<Verdict, "valid">;
  severity: Severity;
  meaning: string;
}

export const PROBLEM_CODES = {
  EMPTY_FILE: { verdict: "corrupt", severity: "error", meaning: "the file has 0 bytes (a save killed before its first write)" },
  NOT_A_CHECKPOINT: { verdict: "unreadable", severity: "error", meaning: "the bytes are not a torch zip, legacy torch, or safetensors checkpoint" },
  NOT_FOUND: { verdict: "unreadable", severity: "error", meaning: "the path does not exist" },
  PERMISSION_DENIED: { verdict: "unreadable", severity: "error", meaning: "the file cannot be opened for reading" },
  IS_A_DIRECTORY: { verdict: "unreadable", severity: "error", meaning: "a directory was given where a file was expected" },
  NOT_A_FILE: { verdict: "unreadable", severity: "error", meaning: "a FIFO, socket or device, which is never read" },
  UNREADABLE: { verdict: "unreadable", severity: "error", meaning: "the operating system refused the read" },
  NO_CHECKPOINTS: { verdict: "unreadable", severity: "error", meaning: "a directory holds no checkpoint-looking files" },
  NOT_A_DIRECTORY: { verdict: "unreadable", severity: "error", meaning: "a file was given where a run directory was expected" },
  IN_PROGRESS: { verdict: "incomplete", severity: "error", meaning: "still being written: a temp name, or its size/mtime changed while ckptguard looked" },
  PART_MISSING: { verdict: "incomplete", severity: "error", meaning: "an HF Trainer checkpoint directory lacks a file it needs, or its trainer_state.json is unreadable" },
  NO_VALID_CHECKPOINT: { verdict: "incomplete", severity: "error", meaning: "no checkpoint in the directory is valid, complete and finished writing (latest)" },
  METRICS_FILE_INVALID: { verdict: "unreadable", severity: "error", meaning: "the metrics file beside the checkpoints cannot be parsed" },
  STEP_NOT_INCREASING: { verdict: "incomplete", severity: "error", meaning: "check-run: a later checkpoint (by name, then mtime) records the same or an earlier step/epoch, e.g. a resume restarted from 0" },
  STEP_GAP: { verdict: "incomplete", severity: "warning", meaning: "check-run: adjacent checkpoints are further apart than the run's usual save interval" },
  WEIGHTS_UNCHANGED: { verdict: "incomplete", severity: "error", meaning: "check-run: adjacent checkpoints at different steps hold identical model weights" },
  LOSS_INCREASING: { verdict: "incomplete", severity: "warning", meaning: "check-run: the newest checkpoint's loss is higher than the first one's" },
  BEST_NOT_BEST: { verdict: "incomplete", severity: "error", meaning: "check-run: the checkpoint called best does not have the best metric of the run" },
  TRUNCATED: { verdict: "corrupt", severity: "error", meaning: "the file ends before the structure it declares (half-written save)" },
  CRC_MISMATCH: { verdict: "corrupt", severity: "error", meaning: "a zip member's bytes do not match their recorded CRC-32" },
  SIZE_MISMATCH: { verdict: "corrupt", severity: "error", meaning: "a zip member inflates to a size other than the one recorded" },
  DEFLATE_BOMB: { verdict: "corrupt", severity: "error", meaning: "a zip member claims an uncompressed size deflate cannot produce" },
  ZIP_MALFORMED: { verdict: "corrupt", severity: "error", meaning: "the zip central directory cannot be parsed" },
  MEMBER_OUT_OF_BOUNDS: { verdict: "corrupt", severity: "error", meaning: "a zip member's data lies outside the file" },
  MEMBER_OVERLAP: { verdict: "corrupt", severity: "error", meaning: "two zip members claim the same bytes" },
  LOCAL_HEADER_MISMATCH: { verdict: "corrupt", severity: "error", meaning: "a member's local header disagrees with the central directory" },
  DUPLICATE_MEMBER: { verdict: "corrupt", severity: "error", meaning: "two zip members share a name, so readers may disagree on which is used" },
  DEFLATE_CORRUPT: { verdict: "corrupt", severity: "error", meaning: "a deflated zip member's stream is invalid" },
  MEMBER_TOO_LARGE: { verdict: "corrupt", severity: "error", meaning: "a member that must be read whole (data.pkl) is larger than any real one (1 GiB)" },
  UNSUPPORTED_COMPRESSION: { verdict: "incompatible", severity: "error", meaning: "a zip member uses a compression method other than stored or deflate" },
  PICKLE_MALFORMED: { verdict: "corrupt", severity: "error", meaning: "the pickle stream is not well-formed" },
  PICKLE_UNSUPPORTED: { verdict: "incompatible", severity: "error", meaning: "the pickle uses a feature checkpoints never need (out-of-band buffers)" },
  TREE_TOO_LARGE: { verdict: "incompatible", severity: "error", meaning: "shared references expand the data to more than 5 million nodes (a pickle bomb)" },
  NESTING_TOO_DEEP: { verdict: "corrupt", severity: "error", meaning: "the data nests deeper than 1000 levels" },
  UNSAFE_GLOBAL: { verdict: "unsafe", severity: "error", meaning: "the pickle names or calls a global outside the allowlist (code would run on torch.load)" },
  STORAGE_OUT_OF_BOUNDS: { verdict: "corrupt", severity: "error", meaning: "a tensor reaches past its storage, or a storage past the file" },
  STORAGE_MISSING: { verdict: "corrupt", severity: "error", meaning: "a tensor's storage has no bytes in the file" },
  STORAGE_SIZE_MISMATCH: { verdict: "corrupt", severity: "error", meaning: "a storage's byte length disagrees with its declared element count" },
  STORAGE_COMPRESSED: { verdict: "incompatible", severity: "error", meaning: "a storage member is compressed, which torch never writes" },
  TENSOR_TOO_SPARSE: { verdict: "incompatible", severity: "error", meaning: "a non-contiguous view spans more than 256 MiB of storage, too much to gather for hashing" },
  SAFETENSORS_MALFORMED: { verdict: "corrupt", severity: "error", meaning: "the safetensors header is not valid" },
  TENSOR_SIZE_MISMATCH: { verdict: "corrupt", severity: "error", meaning: "a safetensors tensor's byte range does not match dtype x shape" },
  TENSOR_OVERLAP: { verdict: "corrupt", severity: "error", meaning: "two safetensors tensors share bytes" },
  SAFETENSORS_GAP: { verdict: "corrupt", severity: "error", meaning: "the safetensors data buffer has bytes no tensor covers" },
  FUTURE_VERSION: { verdict: "incompatible", severity: "error", meaning: "written by a newer format version than this reader accepts, or a checkpoint version above --accept-version" },
  OLD_VERSION: { verdict: "incompatible", severity: "info", meaning: "a version below --accept-version (or an older format): accepted, with how it was read" },
  MISSING_KEY: { verdict: "incomplete", severity: "error", meaning: "a key --require or --kind asks for is absent (or None)" },
  OPTIMIZER_STATE_INCOMPLETE: { verdict: "incomplete", severity: "error", meaning: "the optimizer state lacks a parameter's state, a state tensor (exp_avg, momentum_buffer, ...), or has a state shape unlike its parameter's" },
  EXPECTATION_FAILED: { verdict: "incomplete", severity: "error", meaning: "a value --expect names differs from the one found (or is absent)" },
  FILE_TOO_SMALL: { verdict: "incomplete", severity: "error", meaning: "the file is smaller than --min-size" },
  FILE_TOO_LARGE: { verdict: "incomplete", severity: "error", meaning: "the file is larger than --max-size" },
  NON_FINITE: { verdict: "corrupt", severity: "error", meaning: "a floating-point tensor holds NaN or Inf (--deep)" },
  SHARD_MISSING: { verdict: "incomplete", severity: "error", meaning: "a sharded checkpoint's index or metadata names a shard file that does not exist (or DCP's .metadata is absent)" },
  SHARD_CORRUPT: { verdict: "corrupt", severity: "error", meaning: "a shard file fails its own checks; the problem names the shard and the shard's first problem code" },
  SHARD_COVERAGE: { verdict: "corrupt", severity: "error", meaning: "shards and index disagree: chunks overlap or leave holes in a tensor, a tensor the index names is not in its shard, or a shard holds one the index does not name" },
  SHARD_INDEX_MALFORMED: { verdict: "corrupt", severity: "error", meaning: "an HF index JSON or a DCP .metadata lacks the fields it must have" },
  SHARD_PATH_ESCAPE: { verdict: "unsafe", severity: "error", meaning: "a shard name is absolute or climbs out with `..`: a loader would read (and unpickle) a file outside the checkpoint" },
  TRAILING_DATA: { verdict: "corrupt", severity: "warning", meaning: "bytes after the end of the checkpoint structure" },
  STORAGE_UNREFERENCED: { verdict: "corrupt", severity: "warning", meaning: "a storage no tensor uses" },
  // `run` and `status`: about the run, not one file (the verdict only sets the exit code, 1).
  DIR_NOT_WRITABLE: { verdict: "unreadable", severity: "error", meaning: "run preflight: the checkpoint or state directory cannot be created, or a probe file cannot be written, fsynced and removed in it" },
  NO_SPACE: { verdict: "incomplete", severity: "error", meaning: "run preflight: less free space than 3 checkpoints of the largest size seen (or --min-free), or the disk is full" },
  COMMAND_NOT_FOUND: { verdict: "unreadable", severity: "error", meaning: "run preflight: the training command is not an executable file or not on PATH" },
  RUN_ACTIVE: { verdict: "incompatible", severity: "error", meaning: "run preflight: another ckptguard run is alive on the same state directory" },
  SAVE_GAP: { verdict: "incomplete", severity: "warning", meaning: "run: no new valid checkpoint for longer than --max-gap (in run.log, progress.json and status)" },
  RESTARTS_EXHAUSTED: { verdict: "incomplete", severity: "error", meaning: "run: the command kept failing; --max-restarts relaunches were used up" },
  FINAL_CHECK_FAILED: { verdict: "incomplete", severity: "error", meaning: "run --final-check: after exit 0 the last checkpoint is missing, invalid, incomplete, not the newest, or short of the total" },
  FORCED_RESUME_INVALID: { verdict: "incomplete", severity: "error", meaning: "run --force-resume: the checkpoint named does not exist or fails the resume check (valid, NaN/Inf-free, complete); nothing is resumed from it" },
  VALIDATION_SKIPPED: { verdict: "incomplete", severity: "warning", meaning: "run --force-resume --skip-validation: the named checkpoint was resumed from without being verified (in run.log, progress.json and status)" },
  UNIT_FAILED: { verdict: "incomplete", severity: "error", meaning: "run --workers: a unit was still not done (no valid completion marker, or its outputs fail the check) after 1 + --max-retries launches" },
  RUN_STOPPED: { verdict: "incomplete", severity: "error", meaning: "run: stopped by SIGINT, SIGTERM or SIGHUP before the command finished" },
  BAD_UNIT_NAME: { verdict: "unreadable", severity: "error", meaning: "completion markers: a unit name outside letters, digits, _ . - in /-separated parts (docs/markers.md), so it could escape .done/ or hide" },
  OUTPUT_MISSING: { verdict: "incomplete", severity: "error", meaning: "completion markers: an output named when marking a unit done is missing or not a regular file; no marker is written" },
  NOT_A_RUN: { verdict: "unreadable", severity: "error", meaning: "status: the directory has no run files (.ckptguard/progress.json)" },
  SERVE_FAILED: { verdict: "unreadable", severity: "error", meaning: "serve: cannot listen on --host/--port (the port is in use, or the address is not this machine's)" },
} as const satisfies Record<string, CodeInfo>;

export type ProblemCode = keyof typeof PROBLEM_CODES;

export function codeInfo(code: string): CodeInfo {
  return (PROBLEM_CODES as Record<string, CodeInfo>)[code] ?? { verdict: "corrupt", severity: "error", meaning: code };
}

/** Order in which verdicts win when a file has several problems. */
export const VERDICT_PRECEDENCE: readonly Verdict[] = ["unsafe", "corrupt", "unreadable", "incompatible", "incomplete", "valid"];
