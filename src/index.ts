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
export { collectCheckpointPaths, collectCheckpointTargets, CHECKPOINT_EXTENSIONS, type CheckpointTarget } from "./verify/collect-paths.js";
/**
 * Sharded checkpoints (torch.distributed.checkpoint directories, Hugging Face `*.index.json`
 * + shards): `detectShardedDir(dir)` says which layout a directory holds (or undefined) and
 * which files belong to it; `verifyShardedDir(dir, options, rules)` verifies it as one
 * checkpoint, `{report, model}` like verifyFile, with SHARD_MISSING / SHARD_CORRUPT / SHARD_COVERAGE.
 */
export { detectShardedDir, type ShardedLayout } from "./formats/sharded/index.js";
export { verifyShardedDir } from "./verify/sharded/index.js";
/**
 * Layouts: `detectLayout(model)` names a checkpoint's layout (state_dict, training, nanogpt,
 * lightning, safetensors-weights, unknown) with its model/optimizer paths, step, epoch, loss,
 * parameter count and parts; `detectHfTrainerDir(dir)` describes a Trainer `checkpoint-N/`.
 */
export { detectLayout, type Layout, type LayoutName } from "./formats/layout.js";
export { detectHfTrainerDir, type HfTrainerDir, type HfTrainerPart, type TrainerState } from "./formats/hf-trainer.js";
/** The `--deep` pass: NaN/±Inf counts of every floating-point tensor, from the file's bytes. */
export { scanFinite, scanFiniteFile } from "./formats/finite-scan.js";
export type { FiniteFacts, NonFiniteTensor } from "./formats/model.js";
/**
 * Content rules for verifyFile/verifyPaths/latest. `checkRules(options)` turns the command-line
 * strings (`--require`, `--kind`, `--expect`, `--min-size`, `--max-size`, `--accept-version`)
 * into rules, throwing CkptError "USAGE" on a bad value; the pieces are exported as well.
 * optimizerRule, formatVersionRule and finiteRule run on every file already.
 */
export { checkRules, type CheckOptions } from "./verify/checks.js";
export { parseExpectation, expectationRule, expectationProblems, lookUpExpected, sameValue, type Expectation, type PlainValue } from "./verify/expectations.js";
export { requireRule, parseRequiredKey, KIND_TRAINING, kindRule, parseKind, type CheckpointKind } from "./verify/requirements.js";
export { parseSize, sizeRule, type SizeLimits } from "./verify/size-limits.js";
export { versionRule, parseVersionRange, formatVersionRule, checkpointVersions } from "./verify/versions.js";
export { optimizerRule } from "./verify/optimizer.js";
export { finiteRule } from "./verify/finite.js";
export type { ScanProgress } from "./verify/verify-file.js";
/** Problem codes with their verdicts and meanings; reports and exit codes. */
export { PROBLEM_CODES, type ProblemCode, type Verdict } from "./verify/codes.js";
export { exitCodeOf, verdictOf, type Report, type Problem } from "./verify/report.js";

/** `latest`: the checkpoint to resume from (newest valid and complete, or best by a metric). */
export { findLatestCheckpoint, selectCheckpoint, type SelectOptions, type Selection } from "./catalog/latest.js";
/** `ls`: a run directory's checkpoints, ordered by the step/epoch they record. */
export { listCheckpoints, type Catalog, type CatalogOptions } from "./catalog/catalog.js";
export type { CatalogEntry } from "./catalog/entry.js";
/** `diff`: keys added/removed, dtype/shape changes, changed tensors with max abs and relative L2 difference, scalar changes. */
export { diffCheckpoints, type DiffResult, type DiffChange } from "./catalog/diff.js";
/** `check-run`: a run's checkpoints together (series, weights, loss, best, failed list, progress). */
export { checkRun, type RunCheck, type CheckRunOptions, FAILED_LIST_NAME } from "./catalog/check-run.js";

/**
 * `run`: supervise a training command. `superviseRun(options)` runs preflight, launches the
 * command (its `{resume}` token replaced), verifies checkpoints as they appear, relaunches
 * from the newest valid one after a crash, applies retention and keeps the run files
 * (pid, run.log, heartbeat, progress.json, manifest.json, failed_checkpoints.txt) current;
 * it resolves with the exit code once the run completes, fails for good, or is stopped.
 * `runPreflight(options)` runs the checks alone (throws CkptError DIR_NOT_WRITABLE, NO_SPACE,
 * COMMAND_NOT_FOUND or RUN_ACTIVE).
 */
export { superviseRun, runPreflight, type RunIo, type RunResult } from "./run/supervisor.js";
export type { SignalSource } from "./run/stop-signals.js";
/**
 * `run --workers N`: `superviseWorkers(options)` runs N worker processes over `units`, hands each
 * launch pending units (`{worker}`, `{units}`, CKPTGUARD_WORKER/_UNITS), counts a unit done only
 * when its completion marker verifies after its launch exits, and retries the rest on another
 * worker up to `maxRetries` (then UNIT_FAILED, exit 1).
 */
export { superviseWorkers } from "./run/workers/pool.js";
export type { WorkerRunOptions } from "./run/workers/options.js";
export { substituteWorker, workerEnvironment, WORKER_TOKEN, UNITS_TOKEN } from "./run/workers/launch-args.js";
export type { WorkerSlotJson, WorkerState } from "./run/workers/worker-status.js";
export type { UnitCounts } from "./run/workers/scheduler.js";

export { RUN_DEFAULTS, type RunOptions } from "./run/options.js";
/** How a relaunch is built: `{resume}` substitution, the CKPTGUARD_ variables, exponential backoff. */
export { substituteResume, substituteDir, childEnvironment, backoffDelay, RESUME_TOKEN, DIR_TOKEN } from "./run/restart.js";
/**
 * `rehearse(options)`: the pre-launch checklist (`ckptguard rehearse`). Runs the command
 * once as a reference, checks its checkpoints as a series, SIGKILLs a second run after its
 * first checkpoint and resumes it via `{resume}`, and compares the two ends. Resolves with
 * every line (PASS/FAIL/SKIP and a reason), the exit code and the `rehearsal.md` it wrote
 * into `options.dir`; throws CkptError USAGE on a bad option.
 */
export { rehearse, type Rehearsal, type RehearseIo } from "./rehearse/rehearse.js";
export { REHEARSE_DEFAULTS, type RehearseOptions } from "./rehearse/options.js";
export { CHECKS, type ChecklistLine, type CheckId, type LineStatus } from "./rehearse/checklist.js";
export { compareFinals, diagnose, type FinalComparison } from "./rehearse/compare.js";
export { renderTable, renderMarkdown, REPORT_NAME } from "./rehearse/report.js";
/** `--keep-last` / `--keep-best`: which verified checkpoints may be deleted. */
export { selectForDeletion, type RetentionPolicy } from "./run/retention.js";
/** `status`: a supervised run's health from its run files (alive, dead or stale, position, warnings). */
export { readRunStatus, type RunStatus, type RunHealth } from "./run/status.js";
/** The run files: where they are, and progress.json's shape. */
export { runFiles, readProgress, STATE_DIR_NAME, type RunFiles } from "./run/run-files.js";
export type { ProgressJson, RunState, RunWarning, CheckpointRef } from "./run/progress.js";
/** manifest.json: every checkpoint a run has seen, the latest valid, the best, the failed. */
export { CheckpointManifest, orderedProgressLine, unitProgressLine, type UnitCheck, type UnitStatus, type ResumePlan, type OrderedResumePlan, type MarkDoneOptions } from "./manifest/markers.js";
export { checkUnitName, markerPath, MARKERS_DIR, MARKER_VERSION, type CompletionMarker, type MarkerOutput } from "./manifest/marker-file.js";
export { readManifest, type Manifest, type ManifestCheckpoint, type ManifestFailure } from "./manifest/manifest.js";
/** `5m` -> 300000 and back, as the run flags take durations. */
export { parseDuration, formatDuration } from "./run/units.js";

/**
 * `serve`: the dashboard and read-only JSON API for the runs found below directories.
 * `startServer({dirs, host, port, token})` resolves once listening with `{url, port, close()}`;
 * a non-loopback `host` without a `token` is a USAGE error. Routes: `GET /api/runs`,
 * `/api/runs/:id`, `/api/runs/:id/log?tail=N`, `/api/runs/:id/metrics`, `/api/events` (SSE).
 */
export { startServer, checkServeOptions, SERVE_DEFAULTS, type ServeOptions, type RunningServer } from "./server/server.js";
export { discoverRuns, runId, type KnownRun } from "./server/runs.js";
export type { RunSummary, DashboardState, CheckpointView } from "./server/run-view.js";
/** `run --notify URL`: webhook events (crash, restart, stale, invalid_checkpoint, finish), fire and forget with retries. */
export { Notifier, checkNotifyUrls, type NotifyEvent, type NotifyEventKind, type NotifierOptions } from "./run/notify.js";

/** `python-path`: the folder of the Python companion (atomic_save, AsyncCheckpointWriter, Progress, ...) shipped in this package. */
export { pythonCompanionDir } from "./companion/python-path.js";
