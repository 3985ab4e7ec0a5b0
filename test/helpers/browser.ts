/**
 * Debian's chromium, headless, driven by playwright-core, for the dashboard tests: one page in a
 * throw-away profile, collecting every script error and console error the page reports.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export interface BrowserPage {
  page: Page;
  /** Uncaught exceptions and console errors (CSP violations among them), in order. */
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openBrowserPage(): Promise<BrowserPage> {
  const profile = await mkdtemp(join(tmpdir(), "ckptguard-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  }).catch(async (error: unknown) => {
    await rm(profile, { recursive: true, force: true });
    throw error;
  });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(message.text());
  });
  return {
    page, pageErrors,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
