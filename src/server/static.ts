import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * The page and everything it loads, served by the package itself (no CDN): the files of
 * src/server/page/ (shipped in the npm package through package.json "files"; this module
 * runs from dist/src/server/) and uPlot's browser build from its package. Read once at
 * startup into memory; a request picks one by its exact path, never by a file name.
 */

export interface StaticAsset {
  body: Buffer;
  type: string;
  etag: string;
}

const PAGE_FILES: ReadonlyArray<[urlPath: string, file: string, type: string]> = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/assets/app.js", "app.js", "text/javascript; charset=utf-8"],
  ["/assets/chart.js", "chart.js", "text/javascript; charset=utf-8"],
  ["/assets/style.css", "style.css", "text/css; charset=utf-8"],
];

const UPLOT_FILES: ReadonlyArray<[urlPath: string, module: string, type: string]> = [
  ["/assets/uPlot.iife.min.js", "uplot/dist/uPlot.iife.min.js", "text/javascript; charset=utf-8"],
  ["/assets/uPlot.min.css", "uplot/dist/uPlot.min.css", "text/css; charset=utf-8"],
];

/** The page directory: beside this module when run from source, under the package root when built. */
function pageDir(): string {
  const candidates = [new URL("./page/", import.meta.url), new URL("../../../src/server/page/", import.meta.url)];
  const found = candidates.map((u) => fileURLToPath(u)).find((dir) => existsSync(`${dir}index.html`));
  if (found === undefined) throw new Error(`the dashboard page is missing (looked in ${candidates.map((u) => fileURLToPath(u)).join(", ")})`);
  return found;
}

export function loadStaticAssets(): Map<string, StaticAsset> {
  const assets = new Map<string, StaticAsset>();
  const add = (urlPath: string, body: Buffer, type: string): void => {
    assets.set(urlPath, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 16)}"` });
  };
  const dir = pageDir();
  for (const [urlPath, file, type] of PAGE_FILES) add(urlPath, readFileSync(`${dir}${file}`), type);
  const require = createRequire(import.meta.url);
  for (const [urlPath, module, type] of UPLOT_FILES) add(urlPath, readFileSync(require.resolve(module)), type);
  return assets;
}

/**
 * The page runs only its own scripts and talks only to this server. uPlot sizes its
 * elements through CSSOM (element.style), which style-src does not govern.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
