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
