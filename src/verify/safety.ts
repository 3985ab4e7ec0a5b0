import type { CheckpointModel } from "../formats/model.js";
import { problem, type Problem } from "./report.js";

/**
 * UNSAFE_GLOBAL for each distinct global outside the allowlist, naming module.name,
 * how it was used and where. torch.load would import it, and a call runs code.
 */
export function safetyProblems(model: CheckpointModel, allowed: ReadonlySet<string> = new Set()): Problem[] {
  const seen = new Map<string, Problem>();
  for (const use of model.unsafeGlobals) {
    const name = `${use.module}.${use.name}`;
    if (allowed.has(name)) continue;
    const verb = use.use === "call" ? "calls" : use.use === "extension" ? "uses copyreg extension" : "imports";
    const existing = seen.get(name);
    if (existing) {
      if (use.use === "call" && !existing.message.includes(" calls ")) existing.message = existing.message.replace(" imports ", " calls ");
      continue;
    }
    seen.set(name, problem("UNSAFE_GLOBAL", `pickle ${verb} ${name} (byte ${use.site.offset} of ${use.site.stream}); torch.load would run it`, {
      member: use.site.stream,
      offset: use.site.offset,
    }));
  }
  return [...seen.values()];
}
