/**
 * `ckptguard serve` under attack: path traversal in every spelling, symlinks out of a run,
 * tokens missing or wrong on a non-loopback bind, DNS-rebinding Host names, oversized and
 * malformed requests. After each group the server still answers.
 */
import assert from "node:assert/strict";
import { cp, mkdir, realpath, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runId } from "../../src/server/runs.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { finishedRun, getJson, httpRequest, rawHttp, readEvents } from "../helpers/serve.js";
import { scratchDir, startCli, waitFor } from "../helpers/supervised.js";
import { runCli } from "../helpers/torch.js";

const TOKEN = "s3cret-token-for-tests";

describe("ckptguard serve: security", () => {
  let root: string;
  let outside: string;
  let runDir: string;
  let id: string;
  let local: RunningServer;
  let exposed: RunningServer;

  before(async () => {
    root = await realpath(await scratchDir("serve-security"));
    runDir = join(root, "runs/good");
    await finishedRun(runDir, 1);
    id = runId(runDir);
    // A run outside the served tree, reachable only through symlinks placed inside it.
    outside = await realpath(await scratchDir("serve-outside"));
    await cp(join(runDir, ".ckptguard"), join(outside, "elsewhere/.ckptguard"), { recursive: true });
    await symlink(join(outside, "elsewhere"), join(root, "runs/linked-run"));
    await mkdir(join(root, "runs/linked-state"), { recursive: true });
    await symlink(join(outside, "elsewhere/.ckptguard"), join(root, "runs/linked-state/.ckptguard"));
    // A run whose log was swapped for a link to a file outside it.
    await cp(join(runDir, ".ckptguard"), join(root, "runs/evil/.ckptguard"), { recursive: true });
    await unlink(join(root, "runs/evil/.ckptguard/run.log"));
    await symlink("/etc/passwd", join(root, "runs/evil/.ckptguard/run.log"));
    await unlink(join(root, "runs/evil/.ckptguard/manifest.json"));
    await symlink(join(runDir, ".ckptguard/manifest.json"), join(root, "runs/evil/.ckptguard/manifest.json"));

    local = await startServer({ dirs: [root], port: 0, sse: { maxClients: 3 } });
    exposed = await startServer({ dirs: [root], host: "0.0.0.0", port: 0, token: TOKEN });
  });

  after(async () => {
    await local?.close();
    await exposed?.close();
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  async function assertStillUp(server: RunningServer, headers: Record<string, string> = {}): Promise<void> {
    const { status, json } = await getJson(`http://127.0.0.1:${server.port}/api/runs`, headers);
    assert.equal(status, 200);
    assert.ok(json.runs.length >= 1);
  }

  describe("paths", () => {
    it("answers 404 to traversal in every spelling, sent byte for byte", async () => {
      const targets = [
        "/../../../../etc/passwd", "/api/runs/../../../../etc/passwd", `/api/runs/${id}/../../../../etc/passwd`,
        "/..%2f..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/%252e%252e/%252e%252e/etc/passwd", "/..%5c..%5cetc%5cpasswd", "/..\\..\\etc\\passwd", "/assets/../../package.json",
        "/assets/%2e%2e/%2e%2e/package.json", "/assets/..%2f..%2fpackage.json", `/api/runs/${id}%2f..%2f..%2fetc`,
        `/api/runs/${id}/log%00.txt`, "/etc/passwd", "//etc/passwd", "/api/runs/%2Fetc%2Fpasswd", "/src/server/page/app.js",
        "/api/runs/..", "/api/runs/.%2e", `/api/runs/${id.toUpperCase()}`, "/assets/", "/assets/app.js/", "/index.html/..",
        "/package.json", "/node_modules/uplot/dist/uPlot.iife.min.js", "/.ckptguard/run.log", `/api/runs/${id}/run.log`,
        `/api/runs/${id}/manifest.json`, "/api/runs/%ZZ", "/%", "/api/runs/\u00e9",
      ];
      for (const target of targets) {
        const { status, response } = await rawHttp(local.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        assert.ok(status === 404 || status === 400, `${target}: HTTP ${status}`);
        assert.doesNotMatch(response, /root:|"name": "ckptguard"|uPlot|epoch 1\/1/, target);
      }
      await assertStillUp(local);
    });

    it("answers 404 to absolute-form and non-path request targets", async () => {
      for (const target of ["http://127.0.0.1/etc/passwd", "file:///etc/passwd", "*", "etc/passwd"]) {
        const { status } = await rawHttp(local.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        assert.ok(status === 404 || status === 400, `${target}: HTTP ${status}`);
      }
      await assertStillUp(local);
    });

    it("never follows a symlinked run directory or state directory out of the served tree", async () => {
      const { json } = await getJson(`${local.url}api/runs`);
      assert.deepEqual(json.runs.map((r: any) => r.name).sort(), ["runs/evil", "runs/good"]);
      for (const name of ["elsewhere"]) {
        const { status } = await getJson(`${local.url}api/runs/${runId(join(outside, name))}`);
        assert.equal(status, 404);
      }
    });

    it("refuses run files that are symlinks: 404 for the log, nothing from the linked manifest", async () => {
      const evil = runId(join(root, "runs/evil"));
      const log = await httpRequest(`${local.url}api/runs/${evil}/log`);
      assert.equal(log.status, 404);
      assert.doesNotMatch(log.body, /root:/);
      const { json } = await getJson(`${local.url}api/runs/${evil}`);
      assert.deepEqual(json.checkpoints, [], "a manifest.json that is a symlink is not read");
      assert.deepEqual(json.restarts.events, []);
    });
  });

  describe("tokens on a non-loopback bind", () => {
    const api = (path = "api/runs"): string => `http://127.0.0.1:${exposed.port}/${path}`;

    it("refuses every route without a token or with a wrong one (401, JSON)", async () => {
      for (const path of ["", "api/runs", `api/runs/${id}`, `api/runs/${id}/log`, "api/events", "assets/app.js"]) {
        const attempts: Array<Record<string, string>> = [{}, { Authorization: "Bearer wrong-token-0000" }, { "X-Ckptguard-Token": `${TOKEN}x` }, { Cookie: `ckptguard_token_${exposed.port}=nope` }, { Authorization: `Basic ${TOKEN}` }];
        for (const headers of attempts) {
          const result = await httpRequest(api(path), { headers });
          assert.equal(result.status, 401, `${path} ${JSON.stringify(headers)}`);
          assert.equal(JSON.parse(result.body).error.code, "UNAUTHORIZED");
        }
      }
    });

    it("accepts the token as a bearer header or X-Ckptguard-Token", async () => {
      assert.equal((await httpRequest(api(), { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
      assert.equal((await httpRequest(api(), { headers: { "X-Ckptguard-Token": TOKEN } })).status, 200);
    });

    it("swaps ?token= for an HttpOnly SameSite=Strict cookie and redirects without it", async () => {
      const result = await httpRequest(api(`?token=${TOKEN}&x=1`));
      assert.equal(result.status, 303);
      assert.equal(result.headers.location, "/?x=1");
      const cookie = String(result.headers["set-cookie"]);
      assert.match(cookie, new RegExp(`^ckptguard_token_${exposed.port}=`));
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const withCookie = await httpRequest(api(), { headers: { Cookie: cookie.split(";")[0]! } });
      assert.equal(withCookie.status, 200);
      assert.equal((await httpRequest(api("?token=wrong-token-0000"))).status, 401);
    });

    it("streams events only with the token", async () => {
      const denied = readEvents(api("api/events"));
      assert.equal(await denied.status, 401);
      denied.close();
      const allowed = readEvents(api("api/events"), { "X-Ckptguard-Token": TOKEN });
      assert.equal(await allowed.status, 200);
      await waitFor("the first event", () => allowed.events.length > 0, 5_000);
      allowed.close();
    });

    it("refuses to start on a non-loopback host without a token: exit 2, one line", async () => {
      const env = { ...process.env, CKPTGUARD_TOKEN: "" };
      const hosts = ["0.0.0.0", "::", "192.0.2.1"];
      const results = await Promise.all(hosts.map((host) => runCli(["serve", root, "--host", host, "--port", "0"], { env, timeoutMs: 15_000 })));
      results.forEach((result, i) => {
        assert.equal(result.code, 2, `${hosts[i]}: ${result.stderr}`);
        assert.equal(result.stderr.trim().split("\n").length, 1);
        assert.match(result.stderr, /--token/);
      });
      const short = await runCli(["serve", root, "--host", "0.0.0.0", "--port", "0", "--token", "short"], { timeoutMs: 15_000 });
      assert.equal(short.code, 2);
    });

    it("starts on a non-loopback host with CKPTGUARD_TOKEN and stops cleanly on SIGTERM", async () => {
      const cli = startCli(["serve", root, "--host", "0.0.0.0", "--port", "0"], { ...process.env, CKPTGUARD_TOKEN: TOKEN });
      const url = await waitFor("the serving line", () => /http:\/\/[^ ]+\//.exec(cli.output())?.[0], 15_000);
      assert.equal((await httpRequest(`${url}api/runs`)).status, 401);
      assert.equal((await httpRequest(`${url}api/runs`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
      cli.child.kill("SIGTERM");
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
    });
  });

  describe("hostile requests", () => {
    it("refuses foreign Host names without a token (DNS rebinding): 403", async () => {
      for (const host of ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example:80"]) {
        const result = await httpRequest(`${local.url}api/runs`, { headers: { Host: host } });
        assert.equal(result.status, 403, host);
        assert.equal(JSON.parse(result.body).error.code, "FORBIDDEN_HOST");
      }
      assert.equal((await httpRequest(`${local.url}api/runs`, { headers: { Host: `localhost:${local.port}` } })).status, 200);
    });

    it("refuses a URL over 2 kB (414), headers over 8 kB (431), any body (413), other methods (405)", async () => {
      assert.equal((await httpRequest(`${local.url}api/runs?${"a".repeat(4_000)}`)).status, 414);
      const longer = (await httpRequest(`${local.url}api/runs?${"a".repeat(100_000)}`)).status; // past the 8 kB header limit first
      assert.ok(longer === 414 || longer === 431, `HTTP ${longer}`);
      const huge = await rawHttp(local.port, `GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ${"b".repeat(20_000)}\r\n\r\n`);
      assert.equal(huge.status, 431);
      const body = Buffer.alloc(5 * 1024 * 1024, 0x41);
      const withBody = await httpRequest(`${local.url}api/runs`, { method: "GET", body, headers: { "Content-Length": String(body.length) } });
      assert.equal(withBody.status, 413);
      const post = await httpRequest(`${local.url}api/runs`, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, "GET, HEAD");
      for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]) {
        const { status } = await rawHttp(local.port, `${method} /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        assert.ok(status === 405 || status === 400, `${method}: ${status}`);
      }
      await assertStillUp(local);
    });

    it("answers malformed requests with 400 and carries on", async () => {
      const garbage = [
        "GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), "\r\n\r\n\r\n", "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n",
      ];
      for (const text of garbage) {
        const { status } = await rawHttp(local.port, text, 2_000);
        assert.ok(status === 400 || status === 404 || status === 0, `${JSON.stringify(String(text)).slice(0, 40)}: ${status}`);
      }
      await assertStillUp(local);
    });

    it("limits event streams (503 past the maximum) and frees a slot when a client leaves", async () => {
      const streams = [readEvents(`${local.url}api/events`), readEvents(`${local.url}api/events`), readEvents(`${local.url}api/events`)];
      assert.deepEqual(await Promise.all(streams.map((s) => s.status)), [200, 200, 200]);
      const fourth = readEvents(`${local.url}api/events`);
      assert.equal(await fourth.status, 503);
      fourth.close();
      streams[0]!.close();
      await waitFor("a free slot", async () => {
        const again = readEvents(`${local.url}api/events`);
        const status = await again.status;
        again.close();
        return status === 200;
      }, 5_000, 50);
      for (const s of streams) s.close();
    });

    it("survives clients that vanish mid-request and mid-stream", async () => {
      for (let i = 0; i < 20; i++) {
        await rawHttp(local.port, "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n", 50); // never finishes its headers
        const s = readEvents(`${local.url}api/events`);
        await s.status;
        s.close();
      }
      await assertStillUp(local);
    });
  });
});
