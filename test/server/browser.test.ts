/**
 * The dashboard page in a real browser: Debian's chromium, headless, driven by playwright-core,
 * against `ckptguard serve` over a live `ckptguard run` of examples/train_tiny.py. The page must
 * show the run, follow its progress live, and paint a checkpoint corrupted on disk red.
 * Screenshots go to test-results/.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, realpath, rm, truncate, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { runId } from "../../src/server/runs.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { CHROMIUM, openBrowserPage, type BrowserPage } from "../helpers/browser.js";
import { liveRun, stopRun, waitForCheckpoints } from "../helpers/serve.js";
import { scratchDir, type RunningCli } from "../helpers/supervised.js";
import { REPO_ROOT } from "../helpers/torch.js";

const RESULTS = join(REPO_ROOT, "test-results");
const RED = "rgb(217, 48, 37)"; // --red in page/style.css

// The functions passed to waitForFunction/evaluate run in chromium. This project compiles
// without the DOM's types (lib: ES2022), so the little of the DOM they touch is declared here.
// (They must be functions, not source strings: the page's CSP forbids eval.)
interface PageElement { textContent: string | null; dataset: Record<string, string | undefined> }
declare const document: { querySelector(selector: string): PageElement | null; getElementById(id: string): PageElement | null; documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };
declare function getComputedStyle(element: unknown): { backgroundColor: string; color: string };

describe("dashboard page in chromium", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (.ci/run installs it)` }, () => {
  let root: string;
  let runDir: string;
  let run: RunningCli;
  let server: RunningServer;
  let browser: BrowserPage;
  let page: Page;
  let pageErrors: string[];

  before(async () => {
    root = await realpath(await scratchDir("serve-browser"));
    runDir = join(root, "tiny");
    run = liveRun(runDir, 40, ["--max-gap", "30s"], ["--sleep", "0.4"]);
    const [, started, opened] = await Promise.all([waitForCheckpoints(runDir, 1), startServer({ dirs: [root], port: 0, rediscoverMs: 500 }), openBrowserPage()]);
    server = started;
    browser = opened;
    ({ page, pageErrors } = browser);
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (run) await stopRun(run, runDir);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("shows the run as running, with its epoch out of the total and a live connection", async () => {
    const item = page.locator(`li[data-run-id="${runId(runDir)}"]`);
    await item.waitFor({ timeout: 10_000 });
    assert.equal(await item.locator(".name").textContent(), "tiny");
    await page.waitForFunction((id) => document.querySelector(`li[data-run-id="${id}"]`)?.dataset.state === "running", runId(runDir), { timeout: 10_000 });
    assert.match((await item.locator(".progress-text").textContent()) ?? "", /^epoch \d+\/40/);
    await page.waitForFunction(() => document.getElementById("conn")?.textContent === "live", undefined, { timeout: 10_000 });
  });

  it("advances the progress bar and the epoch live, without a reload", async () => {
    const text = page.locator(".run .progress-text");
    const epochOf = async (): Promise<number> => Number(/epoch (\d+)/.exec((await text.textContent()) ?? "")?.[1] ?? NaN);
    const first = await epochOf();
    await page.waitForFunction((before) => Number(/epoch (\d+)/.exec(document.querySelector(".run .progress-text")?.textContent ?? "")?.[1]) > before, first, { timeout: 15_000 });
    assert.ok((await epochOf()) > first);
    const width = await page.locator(".run .fill").getAttribute("style");
    assert.match(width ?? "", /^width: \d+%;$/);
    assert.match((await page.locator(".run .save-age").getAttribute("class")) ?? "", /age-ok/, "a save seconds ago is well inside --max-gap 30s");
  });

  it("draws the loss chart and the checkpoint timeline with the latest valid and best marked", async () => {
    await page.locator("#chart .uplot canvas").waitFor({ timeout: 10_000 });
    await page.locator("#timeline .mark.latest").waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#timeline .mark.best").count(), 1);
    assert.ok((await page.locator("#timeline .mark[data-verdict=valid]").count()) >= 1);
  });

  it("paints a checkpoint corrupted on disk red in the timeline", async () => {
    const victim = join(runDir, "ckpt_epoch_0001.pt");
    await truncate(victim, Math.floor((await stat(victim)).size / 2)); // a torn write, after the fact
    const mark = page.locator('#timeline .mark[data-name="ckpt_epoch_0001.pt"][data-verdict="corrupt"]');
    await mark.waitFor({ timeout: 15_000 });
    assert.equal(await mark.evaluate((el) => getComputedStyle(el).backgroundColor), RED);
    assert.match((await mark.getAttribute("title")) ?? "", /corrupt/);
    const row = page.locator('#ckpt-table tr[data-verdict="corrupt"] td.verdict-bad');
    assert.equal(await row.evaluate((el) => getComputedStyle(el).color), RED);
  });

  it("shows the log tail and saves screenshots (desktop and phone) under test-results/", async () => {
    await page.waitForFunction(() => (document.getElementById("log")?.textContent ?? "").includes("ckptguard: checkpoint"), undefined, { timeout: 10_000 });
    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, "dashboard.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300); // the chart follows the resize
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
    await page.screenshot({ path: join(RESULTS, "dashboard-phone.png"), fullPage: true });
    assert.ok(existsSync(join(RESULTS, "dashboard.png")) && existsSync(join(RESULTS, "dashboard-phone.png")));
  });

  it("ran without script errors or Content-Security-Policy violations", () => {
    assert.deepEqual(pageErrors, []);
  });
});
