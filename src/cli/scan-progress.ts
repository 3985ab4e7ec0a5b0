/**
 * The `verify --deep` progress bar: on stderr, only when stderr is a terminal and the file is
 * big enough for the scan to take a noticeable time. Piped or redirected output never sees it.
 */
import type { SingleBar } from "cli-progress";
import type { ScanProgress } from "../verify/verify-file.js";

/** Files below this scan in well under a second; a bar would only flicker. */
export const PROGRESS_MIN_FILE_SIZE = 256 * 1024 * 1024;

/**
 * A progress callback drawing one bar per large file, or undefined when no bar should show.
 * cli-progress is loaded only then, so piped runs never pay for it.
 */
export async function scanProgressBar(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): Promise<((progress: ScanProgress) => void) | undefined> {
  if (stream.isTTY !== true || env.TERM === "dumb" || env.CI !== undefined) return undefined;
  const cliProgress = (await import("cli-progress")).default;
  let bar: SingleBar | undefined;
  let current: string | undefined;
  return (progress) => {
    if (progress.fileSize <= PROGRESS_MIN_FILE_SIZE) return;
    if (current !== progress.path) {
      bar?.stop();
      current = progress.path;
      bar = new cliProgress.SingleBar({
        stream,
        format: `scanning ${progress.path} [{bar}] {percentage}% | {value}/{total} MB | {duration}s`,
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic);
      bar.start(Math.ceil(progress.total / 1e6), 0);
    }
    bar?.update(Math.floor(progress.done / 1e6));
    if (progress.done >= progress.total) {
      bar?.stop();
      bar = undefined;
    }
  };
}
