import { join } from "node:path";
import { writeFileAtomic } from "../manifest/atomic-write.js";
import { CHECKS, type ChecklistLine, type LineStatus } from "./checklist.js";

/** The checklist as a terminal table, and as `rehearsal.md` for a pull request. */

export const REPORT_NAME = "rehearsal.md";

export interface ReportSubject {
  command: readonly string[];
  lines: readonly ChecklistLine[];
  exitCode: number;
}

export type StatusColor = (status: LineStatus, text: string) => string;

const ID_WIDTH = Math.max(...Object.keys(CHECKS).map((id) => id.length));

/** "PASS  reference-run      exit 0 after 4.1 s, ..." */
export function renderLine(line: ChecklistLine, color: StatusColor = (_s, t) => t): string {
  return `${color(line.status, line.status.padEnd(4))}  ${line.id.padEnd(ID_WIDTH)}  ${line.reason}\n`;
}

export function renderTable(lines: readonly ChecklistLine[], color?: StatusColor): string {
  return lines.map((l) => renderLine(l, color)).join("") + summary(lines);
}

export function summary(lines: readonly ChecklistLine[]): string {
  const count = (s: LineStatus) => lines.filter((l) => l.status === s).length;
  return `${count("PASS")} passed, ${count("FAIL")} failed, ${count("SKIP")} skipped\n`;
}

export function renderMarkdown(subject: ReportSubject, now = new Date()): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");
  const icon: Record<LineStatus, string> = { PASS: "✅ PASS", FAIL: "❌ FAIL", SKIP: "⏭️ SKIP" };
  const rows = subject.lines.map((l) => `| ${icon[l.status]} | ${cell(l.title)} | ${cell(l.reason)} |`);
  return [
    `## ckptguard rehearsal: ${subject.exitCode === 0 ? "ready to launch" : "not ready"}`,
    "",
    `Command: \`${subject.command.join(" ").replace(/`/g, "'")}\`  `,
    `Rehearsed: ${now.toISOString()}`,
    "",
    "| Result | Check | Details |",
    "| --- | --- | --- |",
    ...rows,
    "",
    summary(subject.lines),
  ].join("\n");
}

/** Writes `rehearsal.md` into the rehearsal directory; returns its path. */
export async function writeMarkdownReport(dir: string, subject: ReportSubject): Promise<string> {
  const path = join(dir, REPORT_NAME);
  await writeFileAtomic(path, renderMarkdown(subject));
  return path;
}
