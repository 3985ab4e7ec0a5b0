/**
 * The dashboard's Workers table in a real browser (Debian's chromium driven by playwright-core,
 * as in browser.test.ts) against `ckptguard serve` over a live `ckptguard run --workers 2` of
 * test/run/fixtures/unit_worker.py: while one worker waits on a file the test creates, and again
 * once the run has completed, each row shows its worker's index, status, pid, units, attempt,
 * launches and failures as progress.json says. A screenshot goes to test-results/.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { runId } from "../../src/server/runs.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { CHROMIUM, openBrowserPage, type BrowserPage } from "../helpers/browser.js";
import { stopRun } from "../helpers/serve.js";
import { fixture, killGroupQuietly, readJsonIfPresent, scratchDir, startCli, waitFor, type RunningCli } from "../helpers/supervised.js";
import { REPO_ROOT, TORCH_PYTHON } from "../helpers/torch.js";

const RESULTS = join(REPO_ROOT, "test-results");

// The functions passed to evaluate run in chromium; this project compiles without the DOM's
// types (lib: ES2022), so the little of the DOM they touch is declared here.
interface PageElement { textContent: string | null; children: ArrayLike<PageElement>; dataset: Record<string, string | undefined>; hidden: boolean }
declare const document: { querySelectorAll(selector: string): ArrayLike<PageElement>; getElementById(id: string): PageElement | null };

/** A Workers table row as the page shows it: index, status (and its data-status), pid, units, attempt, launches, failures. */
type Row = [worker: string, status: string, dataStatus: string, pid: string, units: string, attempt: string, launches: string, failures: string];

/** The rows progress.json's `workers` should show, in the page's wording. */
function expectedRows(progress: any): Row[] {
  return progress.workers.map((w: any): Row => [
    String(w.worker), w.status, w.status, w.pid === null ? "–" : String(w.pid), w.units.join(", ") || "–", String(w.attempts), String(w.launches), String(w.failures),
  ]);
}

async function tableRows(page: Page): Promise<{ hidden: boolean; units: string; rows: Row[] }> {
  return page.evaluate(() => {
    const cells = (tr: PageElement): string[] => Array.from(tr.children, (td) => td.textContent ?? "");
    const rows = Array.from(document.querySelectorAll("#worker-table tbody tr"), (tr) => {
      const [worker, status, pid, , units, attempt, , launches, failures] = cells(tr);
      return [worker, status, tr.dataset.status ?? "", pid, units, attempt, launches, failures] as Row;
    });
    return { hidden: document.getElementById("workers")?.hidden ?? true, units: document.getElementById("d-units")?.textContent ?? "", rows };
  });
}

/** Waits until the table shows `rows` and the units line `units`; fails with the table's last state against them. */
async function waitForTable(page: Page, rows: Row[], units: string): Promise<void> {
  let last: Awaited<ReturnType<typeof tableRows>> | undefined;
  await waitFor("the Workers table to match progress.json", async () => {
    last = await tableRows(page);
    return !last.hidden && last.units === units && JSON.stringify(last.rows) === JSON.stringify(rows);
  }, 15_000, 100).catch(() => undefined);
  assert.deepEqual(last, { hidden: false, units, rows });
}

describe("dashboard Workers table in chromium", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (.ci/run installs it)` }, () => {
  let root: string;
  let runDir: string;
  let gate: string;
  let run: RunningCli;
  let server: RunningServer;
  let browser: BrowserPage;
  let page: Page;
  let pageErrors: string[];
  const progressFile = (): string => join(runDir, ".ckptguard", "progress.json");

  before(async () => {
    root = await realpath(await scratchDir("serve-workers"));
    runDir = join(root, "shards");
    gate = join(root, "go");
    const tries = join(root, "tries");
    await mkdir(tries, { recursive: true });
    run = startCli([
      "run", "--dir", runDir, "--workers", "2", "--units", "a,b,c", "--backoff", "50ms", "--heartbeat", "100ms", "--progress-interval", "100ms", "--quiet",
      "--", TORCH_PYTHON, fixture("unit_worker.py"), "--worker", "{worker}", "--units", "{units}", "--log", join(root, "worker.log"), "--tries", tries, "--wait", `c=${gate}`,
    ]);
    const [started, opened] = await Promise.all([startServer({ dirs: [root], port: 0, rediscoverMs: 500 }), openBrowserPage()]);
    server = started;
    browser = opened;
    ({ page, pageErrors } = browser);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (gate) await writeFile(gate, "").catch(() => undefined);
    const progress = runDir ? await readJsonIfPresent(progressFile()).catch(() => undefined) : undefined;
    if (run) await stopRun(run, runDir);
    for (const w of progress?.workers ?? []) killGroupQuietly(w.pid);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("shows each worker's index, status and units while one worker waits on a unit", async () => {
    // a and b done, c running on one slot (waiting for the gate file), the other slot done: stable until the gate appears.
    const progress = await waitFor("c running on one worker, the other done", async () => {
      if (run.child.exitCode !== null) throw new Error(`the run exited ${run.child.exitCode}:\n${run.output()}`);
      const p = await readJsonIfPresent(progressFile()).catch(() => undefined);
      const states = (p?.workers ?? []).map((w: any) => `${w.status}:${w.units.join(",")}`).sort();
      return p?.units?.done === 2 && states.length === 2 && states[0]!.startsWith("done:") && states[1] === "running:c" ? p : undefined;
    }, 30_000, 50);
    await waitFor("the worker waiting on the gate", async () => (await readFile(join(runDir, ".ckptguard", "run.log"), "utf8").catch(() => "")).includes("waiting for"));
    assert.deepEqual(await readJsonIfPresent(progressFile()).then((p) => p.workers), progress.workers, "progress.json stays put while c waits");

    await page.goto(`${server.url}#${runId(runDir)}`); // as after a reload: the address names the run
    await waitForTable(page, expectedRows(progress), "2/3 units done, 1 running, 0 pending");
    const running = progress.workers.find((w: any) => w.status === "running");
    assert.equal(await page.locator(`#worker-table tr[data-worker="${running.worker}"] td.worker-running`).textContent(), "running");
    assert.ok(await page.locator("#worker-table").isVisible(), "the run's detail, Workers table included, is shown for the run the address names");
    assert.equal(await page.locator(".progress-text").first().textContent(), "2/3 units done", "the run's card counts units, not epochs");
    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, "dashboard-workers.png"), fullPage: true });
  });

  it("follows the run to its end without a reload: every worker done, the last units each ran", async () => {
    await writeFile(gate, "");
    const result = await run.exited;
    assert.equal(result.code, 0, result.stderr);
    const progress = await readJsonIfPresent(progressFile());
    assert.equal(progress.status, "completed");
    assert.deepEqual(progress.workers.map((w: any) => w.status), ["done", "done"]);
    assert.deepEqual(progress.workers.flatMap((w: any) => w.units).sort().slice(-1), ["c"]);
    await waitForTable(page, expectedRows(progress), "3/3 units done, 0 running, 0 pending");
  });

  it("ran without script errors or Content-Security-Policy violations", () => {
    assert.deepEqual(pageErrors, []);
  });
});
