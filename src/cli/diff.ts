import type { Command } from "commander";
import { diffCheckpoints, type DiffChange, type DiffResult } from "../catalog/diff.js";
import type { CliContext, ExitCode } from "./context.js";
import { colorEnabled, palette } from "./style.js";

export function registerDiff(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("diff")
    .description("compare two checkpoints key by key: added/removed keys, dtype/shape changes, changed tensors (max abs and relative L2 difference) and scalars; exit 1 when they differ")
    .argument("<a>", "checkpoint file")
    .argument("<b>", "checkpoint file")
    .option("--json", "print {a, b, identical, added, removed, changed: [{path, kind, from, to, max_abs_diff?, rel_l2?}]} as JSON")
    .action(async (a: string, b: string, opts: { json?: boolean }) => {
      const result = await diffCheckpoints(a, b);
      if (opts.json) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else ctx.stdout.write(renderDiff(result, colorEnabled(ctx.stdout, ctx.env)));
      if (result.unsafe_globals.length > 0) {
        ctx.stderr.write(`ckptguard: UNSAFE_GLOBAL: pickle references ${result.unsafe_globals.join(", ")}; do not torch.load these files\n`);
        setExit(3);
      } else {
        setExit(result.identical ? 0 : 1);
      }
    });
}

export function renderDiff(result: DiffResult, color: boolean): string {
  const c = palette(color);
  const lines = [`${c.dim("a:")} ${result.a}`, `${c.dim("b:")} ${result.b}`];
  if (result.identical) return `${[...lines, c.green("identical")].join("\n")}\n`;
  for (const path of result.removed) lines.push(c.red(`- ${path}`));
  for (const path of result.added) lines.push(c.green(`+ ${path}`));
  for (const change of result.changed) lines.push(c.yellow(`~ ${describeChange(change)}`));
  lines.push(`${result.added.length} added, ${result.removed.length} removed, ${result.changed.length} changed`);
  return `${lines.join("\n")}\n`;
}

function describeChange(change: DiffChange): string {
  switch (change.kind) {
    case "dtype": return `${change.path}: dtype ${String(change.from)} -> ${String(change.to)}`;
    case "shape": return `${change.path}: shape ${JSON.stringify(change.from)} -> ${JSON.stringify(change.to)}`;
    case "value": return `${change.path}: ${JSON.stringify(change.from)} -> ${JSON.stringify(change.to)}`;
    case "values": {
      const stats = change.max_abs_diff === undefined ? "" : ` (max |diff| ${short(change.max_abs_diff)}, relative L2 ${short(change.rel_l2)}${change.non_finite_changed ? `, ${change.non_finite_changed} NaN/Inf changed` : ""})`;
      return `${change.path}: values changed${stats}`;
    }
  }
}

function short(value: number | string | undefined): string {
  return typeof value === "number" ? String(Number(value.toPrecision(4))) : String(value);
}
