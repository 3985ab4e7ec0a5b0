import type { Command } from "commander";
import { inspectCheckpoint, type InspectResult } from "../inspect/inspect.js";
import type { CliContext, ExitCode } from "./context.js";
import { colorEnabled, formatBytes, formatCount, palette } from "./style.js";

export function registerInspect(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("inspect")
    .description("show what a checkpoint holds (keys, dtypes, shapes, sizes) without loading it")
    .argument("<file>", "checkpoint file (.pt/.pth/.ckpt/.bin torch zip or legacy, .safetensors)")
    .option("--json", "print the DESIGN.md JSON document")
    .option("--tensor-hash", "add the SHA-256 of each tensor's logical elements")
    .action(async (file: string, opts: { json?: boolean; tensorHash?: boolean }) => {
      const result = await inspectCheckpoint(file, { tensorHash: opts.tensorHash === true });
      if (opts.json) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else ctx.stdout.write(renderInspect(result, colorEnabled(ctx.stdout, ctx.env)));
      if (result.unsafe_globals.length > 0) {
        ctx.stderr.write(`ckptguard: ${file}: UNSAFE_GLOBAL: pickle references ${result.unsafe_globals.join(", ")}; do not torch.load it\n`);
        setExit(3);
      }
    });
}

export function renderInspect(result: InspectResult, color: boolean): string {
  const c = palette(color);
  const lines = [`${c.bold(result.path)}  ${result.format}  ${formatBytes(result.file_size)}`, renderLayout(result.layout)];
  const width = Math.min(60, Math.max(10, ...Object.keys(result.entries).map((k) => k.length)));
  for (const [path, entry] of Object.entries(result.entries)) {
    if ("dtype" in entry) {
      const bytes = entry.shape.reduce((a, b) => a * b, 1);
      const hash = entry.sha256 ? `  ${c.dim(entry.sha256.slice(0, 16))}` : "";
      lines.push(`  ${path.padEnd(width)}  ${entry.dtype.padEnd(9)} ${JSON.stringify(entry.shape).padEnd(16)} ${c.dim(`${formatCount(bytes)} el`)}${hash}`);
    } else if ("value" in entry) {
      lines.push(`  ${path.padEnd(width)}  ${c.green(JSON.stringify(entry.value))}`);
    } else if ("bytes" in entry) {
      lines.push(`  ${path.padEnd(width)}  ${c.dim(`<${entry.bytes} bytes>`)}`);
    } else {
      lines.push(`  ${path.padEnd(width)}  ${c.yellow(`<${entry.object}>`)}`);
    }
  }
  lines.push(`${result.tensor_count} tensors, ${formatCount(result.total_elements)} elements, ${formatBytes(result.tensor_bytes)} of tensor data`);
  return `${lines.join("\n")}\n`;
}

/** `layout: training  epoch 3  loss 0.2795  1,369 parameters  parts: model, optimizer, epoch, loss, config` */
export function renderLayout(layout: InspectResult["layout"]): string {
  const progress = [
    layout.step !== null ? `step ${layout.step}` : "",
    layout.epoch !== null ? `epoch ${layout.epoch}` : "",
    layout.loss !== null ? `loss ${Number(layout.loss.toPrecision(4))}` : "",
  ].filter((s) => s !== "");
  const parts = layout.parts.length > 0 ? layout.parts.join(", ") : "none recognised";
  return `layout: ${[layout.name, ...progress, `${formatCount(layout.parameter_count)} parameters`].join("  ")}  parts: ${parts}`;
}
