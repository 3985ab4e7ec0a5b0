import { codeInfo } from "../codes.js";
import { problem, type Problem } from "../report.js";

/**
 * A shard's own problems as problems of the sharded checkpoint. Unsafe ones are kept as
 * they are (a shard that runs code on load makes the whole checkpoint unsafe, not merely
 * corrupt); the first other error becomes one SHARD_CORRUPT naming the shard and the
 * shard's own code; warnings are kept. `where.member` names the shard file in all of them.
 */
export function shardProblems(shard: string, inner: readonly Problem[], what = `shard ${shard}`, offset?: number): Problem[] {
  const out: Problem[] = [];
  const at = { member: shard, ...(offset !== undefined ? { offset } : {}) };
  let corrupt: Problem | undefined;
  for (const p of inner) {
    const innerMember = p.where.member !== undefined && p.where.member !== shard ? { inner_member: p.where.member } : {};
    if (p.severity === "error" && codeInfo(p.code).verdict === "unsafe") {
      out.push({ ...p, message: `${what}: ${p.message}`, where: { ...at, ...(p.where.path !== undefined ? { path: p.where.path } : {}) }, details: { ...p.details, shard, ...innerMember } });
    } else if (p.severity === "error") {
      corrupt ??= { ...problem("SHARD_CORRUPT", `${what}: ${p.code}: ${p.message}`, at), details: { shard, code: p.code, ...innerMember } };
    } else if (p.severity === "warning") {
      out.push({ ...p, message: `${what}: ${p.message}`, where: at, details: { ...p.details, shard, ...innerMember } });
    }
  }
  return corrupt ? [corrupt, ...out] : out;
}

/** SHARD_CORRUPT for a shard that could not be read at all (the reader threw `code`). */
export function shardUnreadable(shard: string, code: string, message: string, what = `shard ${shard}`, offset?: number): Problem {
  return { ...problem("SHARD_CORRUPT", `${what}: ${code}: ${message}`, { member: shard, ...(offset !== undefined ? { offset } : {}) }), details: { shard, code } };
}
