import type { CheckpointModel } from "../formats/model.js";
import { problem, type Problem } from "./report.js";

/** Container-level facts (CRCs, sizes, structural defects) as problems. */
export function integrityProblems(model: CheckpointModel): Problem[] {
  const out: Problem[] = [];
  for (const m of model.integrity.crcMismatches) {
    out.push(problem("CRC_MISMATCH", `member ${m.member}: CRC-32 is ${hex(m.actual)}, recorded ${hex(m.expected)}`, { member: m.member }));
  }
  for (const m of model.integrity.sizeMismatches) {
    out.push(problem("SIZE_MISMATCH", `member ${m.member}: ${m.reason} (recorded ${m.expected} bytes, got ${m.actual})`, { member: m.member }));
  }
  for (const d of model.integrity.defects) {
    const where = { ...(d.member !== undefined ? { member: d.member } : {}), ...(d.offset !== undefined ? { offset: d.offset } : {}) };
    out.push(problem(d.code, d.message, where));
  }
  return out;
}

function hex(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, "0")}`;
}
