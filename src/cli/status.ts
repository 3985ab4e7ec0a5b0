import { relative } from "node:path";
import type { Command } from "commander";
import { readRunStatus, type RunStatus } from "../run/status.js";
import { formatDuration } from "../run/units.js";
import type { CliContext, ExitCode } from "./context.js";
import { colorEnabled, palette } from "./style.js";

export function registerStatus(program: Command, ctx: CliContext, setExit: (code: ExitCode) => void): void {
  program
    .command("status")
    .description("is a supervised run alive, where is it, what did it last save; exits 1 when dead, stale or warning")
    .argument("<dir>", "the checkpoint directory given to `ckptguard run --dir`")
    .option("--state-dir <dir>", "the run's --state-dir, when it was not the default")
    .option("--json", "print the status as JSON")
    .action(async (dir: string, opts: { json?: boolean; stateDir?: string }) => {
      const status = await readRunStatus(dir, opts.stateDir ? { stateDir: opts.stateDir } : {});
      if (opts.json) ctx.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else ctx.stdout.write(renderStatus(status, colorEnabled(ctx.stdout, ctx.env)));
      setExit(status.exit_code);
    });
}

export function renderStatus(s: RunStatus, color: boolean): string {
  const c = palette(color);
  const name = (path: string): string => relative(s.dir, path) || path;
  const ago = (ms: number | null): string => (ms === null ? "never" : `${formatDuration(ms)} ago`);
  const state = s.alive || s.state === "completed" ? c.green(s.state) : c.red(s.state);
  const finished = s.state === "completed" || s.state === "failed" || s.state === "stopped";
  const supervisor = s.pid === null ? "" : finished ? ` (supervisor pid ${s.pid} exited)`
    : ` (supervisor pid ${s.pid}${s.pid_alive ? "" : " not running"}, heartbeat ${ago(s.heartbeat_age_ms)})`;
  const lines = [`${c.bold(s.dir)}: ${state}${supervisor}`];
  if (s.child_pid !== null) lines.push(`  command    pid ${s.child_pid} ${s.child_alive ? "running" : "gone"}`);
  lines.push(`  ${s.workers ? "retries " : "restarts"}   ${s.restarts}`);
  if (s.units) lines.push(`  units      ${s.units.done}/${s.units.total} done, ${s.units.running} running, ${s.units.pending} pending, ${s.units.failed} failed`);
  for (const w of s.workers ?? []) {
    const pid = w.pid === null ? "" : ` pid ${w.pid}${w.status === "running" && !w.alive ? " gone" : ""}`;
    const on = w.units.length > 0 ? ` ${w.status === "running" ? "on" : "last"} ${w.units.join(",")}${w.attempts > 1 ? ` (attempt ${w.attempts})` : ""}` : "";
    lines.push(`  worker ${w.worker}   ${w.status}${w.gpu !== null ? ` GPU ${w.gpu}` : ""}${pid}${on}, ${w.launches} launch${w.launches === 1 ? "" : "es"}, ${w.failures} failed`);
  }
  const position = [
    s.epoch !== null ? `epoch ${s.epoch}${s.total_epochs !== null ? `/${s.total_epochs}` : ""}` : "",
    s.step !== null ? `step ${s.step}${s.total_steps !== null ? `/${s.total_steps}` : ""}` : "",
    s.loss !== null ? `loss ${s.loss.toPrecision(5)}` : "",
    s.eta_seconds !== null ? `ETA ${formatDuration(s.eta_seconds * 1000)}` : "",
    s.last_report_age_ms !== null ? `reported ${ago(s.last_report_age_ms)}` : "",
  ].filter(Boolean);
  if (position.length > 0) lines.push(`  progress   ${position.join(", ")}`);
  if (!s.workers || s.latest_valid) lines.push(`  last save  ${ago(s.last_save_age_ms)}${s.latest_valid ? `: ${name(s.latest_valid.path)}` : ""}`);
  if (s.best) lines.push(`  best       ${name(s.best.path)}${s.best.metric ? ` (${s.best.metric.name} ${s.best.metric.value.toPrecision(5)})` : ""}`);
  if (s.alive && s.next_save_expected_at !== null) {
    const due = Date.parse(s.next_save_expected_at) - Date.now();
    lines.push(`  next save  ${due >= 0 ? `expected in ${formatDuration(due)}` : `overdue by ${formatDuration(-due)}`}`);
  }
  for (const w of s.warnings) lines.push(c.yellow(`  WARNING ${w.code}: ${w.message}`));
  if (s.outcome) lines.push(c.red(`  ${s.outcome.code}: ${s.outcome.message}`));
  return `${lines.join("\n")}\n`;
}
