/**
 * `run --notify URL`: webhook delivery against a real local HTTP receiver that answers as
 * told (ok, 500, 404, never). The supervisor never waits: `send` returns at once.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { isCkptError } from "../../src/errors.js";
import { checkNotifyUrls, Notifier, redactUrl } from "../../src/run/notify.js";
import { waitFor } from "../helpers/supervised.js";

interface Received {
  path: string;
  headers: IncomingMessage["headers"];
  body: any;
}

/** A webhook receiver: `plan[path]` lists the status of each successive answer ("hang" never answers). */
class Receiver {
  readonly received: Received[] = [];
  readonly plan = new Map<string, Array<number | "hang">>();
  private server: Server | undefined;
  private readonly hanging: ServerResponse[] = [];
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.received.push({ path: req.url ?? "", headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        const answer = this.plan.get(req.url ?? "")?.shift() ?? 200;
        if (answer === "hang") {
          this.hanging.push(res);
          return;
        }
        res.writeHead(answer).end("ok");
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

describe("Notifier", () => {
  const receiver = new Receiver();
  before(() => receiver.start());
  after(() => receiver.stop());

  it("POSTs the event as JSON with a Slack-compatible text field", async () => {
    const failures: string[] = [];
    const notifier = new Notifier({ urls: [receiver.url("/ok")], onFailure: (m) => failures.push(m) });
    notifier.send(Notifier.event("crash", "/runs/a", "run /runs/a: the command exited with code 1", { code: 1 }));
    await notifier.flush(5_000);
    const [got] = receiver.at("/ok");
    assert.equal(got?.headers["content-type"], "application/json");
    assert.equal(got?.body.event, "crash");
    assert.equal(got?.body.text, "ckptguard: run /runs/a: the command exited with code 1");
    assert.equal(got?.body.dir, "/runs/a");
    assert.deepEqual(got?.body.details, { code: 1 });
    assert.match(got?.body.at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(typeof got?.body.host, "string");
    assert.deepEqual(failures, []);
  });

  it("returns from send at once while the receiver does not answer", async () => {
    receiver.plan.set("/slow", ["hang", "hang"]);
    const notifier = new Notifier({ urls: [receiver.url("/slow")], timeoutMs: 200, retries: 1, backoffMs: 10 });
    const started = performance.now();
    for (let i = 0; i < 50; i++) notifier.send(Notifier.event("restart", "/r", `restart ${i}`));
    assert.ok(performance.now() - started < 50, "queueing 50 events took no time");
    await notifier.flush(100);
  });

  it("retries a 500 and a timeout with backoff, then delivers", async () => {
    receiver.plan.set("/flaky", [500, "hang", 200]);
    const failures: string[] = [];
    const notifier = new Notifier({ urls: [receiver.url("/flaky")], timeoutMs: 300, retries: 3, backoffMs: 20, onFailure: (m) => failures.push(m) });
    notifier.send(Notifier.event("stale", "/r", "no save for 10m"));
    await waitFor("delivery", () => notifier.idle && receiver.at("/flaky").length === 3, 5_000);
    assert.deepEqual(receiver.at("/flaky").map((r) => r.body.event), ["stale", "stale", "stale"]);
    assert.deepEqual(failures, []);
    await notifier.flush(100);
  });

  it("gives up after 3 retries and reports it without the URL's secret path", async () => {
    receiver.plan.set("/hooks/T000/SECRET", [503, 503, 503, 503, 503]);
    const failures: string[] = [];
    const notifier = new Notifier({ urls: [receiver.url("/hooks/T000/SECRET")], backoffMs: 10, onFailure: (m) => failures.push(m) });
    notifier.send(Notifier.event("finish", "/r", "run finished"));
    await waitFor("giving up", () => failures.length === 1, 5_000);
    assert.equal(receiver.at("/hooks/T000/SECRET").length, 4, "one attempt and 3 retries");
    assert.match(failures[0]!, /HTTP 503/);
    assert.doesNotMatch(failures[0]!, /SECRET/);
    await notifier.flush(100);
  });

  it("does not retry an event the receiver refuses (4xx)", async () => {
    receiver.plan.set("/gone", [404, 404]);
    const failures: string[] = [];
    const notifier = new Notifier({ urls: [receiver.url("/gone")], backoffMs: 10, onFailure: (m) => failures.push(m) });
    notifier.send(Notifier.event("invalid_checkpoint", "/r", "x"));
    await waitFor("giving up", () => failures.length === 1, 5_000);
    assert.equal(receiver.at("/gone").length, 1);
    await notifier.flush(100);
  });

  it("delivers to every URL, in order per URL", async () => {
    const notifier = new Notifier({ urls: [receiver.url("/a"), receiver.url("/b")] });
    for (const kind of ["crash", "restart", "finish"] as const) notifier.send(Notifier.event(kind, "/r", kind));
    await notifier.flush(5_000);
    assert.deepEqual(receiver.at("/a").map((r) => r.body.event), ["crash", "restart", "finish"]);
    assert.deepEqual(receiver.at("/b").map((r) => r.body.event), ["crash", "restart", "finish"]);
  });

  it("waits at most the given time in flush, then drops what is left", async () => {
    receiver.plan.set("/stuck", ["hang", "hang", "hang", "hang"]);
    const notifier = new Notifier({ urls: [receiver.url("/stuck")], timeoutMs: 5_000 });
    notifier.send(Notifier.event("finish", "/r", "done"));
    const started = performance.now();
    await notifier.flush(200);
    const waited = performance.now() - started;
    assert.ok(waited >= 150 && waited < 1_000, `flush waited ${waited} ms`);
    notifier.send(Notifier.event("finish", "/r", "after close")); // ignored, never throws
  });

  it("survives a URL nobody listens on", async () => {
    const failures: string[] = [];
    const notifier = new Notifier({ urls: ["http://127.0.0.1:1/hook"], retries: 1, backoffMs: 10, onFailure: (m) => failures.push(m) });
    notifier.send(Notifier.event("crash", "/r", "x"));
    await waitFor("giving up", () => failures.length === 1, 5_000);
    assert.match(failures[0]!, /^notify http:\/\/127\.0\.0\.1:1: gave up on the crash event: /);
  });
});

describe("checkNotifyUrls", () => {
  it("accepts http and https URLs", () => {
    assert.deepEqual(checkNotifyUrls(["https://hooks.slack.com/services/T/B/X", "http://localhost:9000/x"]), ["https://hooks.slack.com/services/T/B/X", "http://localhost:9000/x"]);
  });

  it("refuses anything else with a USAGE error naming --notify and the value", () => {
    for (const url of ["ftp://x/y", "file:///etc/passwd", "hooks.slack.com/x", "", "javascript:alert(1)"]) {
      assert.throws(() => checkNotifyUrls([url]), (e: unknown) => isCkptError(e) && e.code === "USAGE" && e.message.includes("--notify") && e.message.includes(JSON.stringify(url)));
    }
  });

  it("redacts a URL to its origin for logs", () => {
    assert.equal(redactUrl("https://hooks.slack.com/services/T000/B000/XXXX?x=1"), "https://hooks.slack.com");
  });
});
