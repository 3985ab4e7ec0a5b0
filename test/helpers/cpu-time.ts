import { fail, ok } from "node:assert/strict";
import type { Report } from "../../src/verify/report.js";
import { verifyFile } from "../../src/verify/verify-file.js";

/**
 * CPU time instead of wall time for "answers quickly" assertions: the suite shares two
 * cores with torch training in other test files, which stretches wall time but not the
 * CPU a piece of our code spends.
 */

/** The most CPU one small bad input may cost (node itself starts in ~0.1 s). */
export const CPU_LIMIT_SECONDS = 2;

/** CPU milliseconds (user + system) this process spent since `start` (a `process.cpuUsage()` value). */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/**
 * `verifyFile(path)` in this process: it must answer with a report, never throw, within
 * CPU_LIMIT_SECONDS of CPU; the assertion names `what` was verified.
 */
export async function verifyWithinCpuLimit(path: string, what: string): Promise<Report> {
  const started = process.cpuUsage();
  let report: Report;
  try {
    ({ report } = await verifyFile(path));
  } catch (error) {
    fail(`verifyFile threw on ${what}: ${error instanceof Error ? error.stack : String(error)}`);
  }
  const ms = cpuMsSince(started);
  ok(ms < CPU_LIMIT_SECONDS * 1000, `${what} took ${ms.toFixed(0)} ms of CPU`);
  return report;
}
