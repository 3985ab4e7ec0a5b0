/**
 * `ckptguard run --notify URL` end to end: a real run of examples/train_tiny.py whose training
 * process is SIGKILLed once and whose first checkpoint is torn on disk, reporting to two real
 * local webhooks: one that answers, and one that never does, which must not hold the
 * supervisor up.
 */
import assert from "node:assert/strict";
import { readFile, realpath, rm, stat, truncate } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { liveRun, waitForCheckpoints } from "../helpers/serve.js";
import { killGroupQuietly, readJsonIfPresent, scratchDir, waitFor } from "../helpers/supervised.js";

describe("ckptguard run --notify", () => {
  let root: string;
  let server: Server;
  let port = 0;
  const received: Array<{ path: string; body: any }> = [];
  const hanging: ServerResponse[] = [];
  let finished: { code: number | null; stderr: string; runLog: string; exitedAfterCompleteMs: number } | undefined;

  before(async () => {
    root = await realpath(await scratchDir("notify-run"));
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/hang") {
          hanging.push(res);
          return;
        }
        received.push({ path: req.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;

    const dir = join(root, "run");
    // --max-gap 1s: torch's import alone outlasts it, so the first SAVE_GAP (stale) event is certain.
    const hooks = ["/hook", "/hang"].flatMap((path) => ["--notify", `http://127.0.0.1:${port}${path}`]);
    const run = liveRun(dir, 3, ["--max-gap", "1s", ...hooks], ["--sleep", "0.3"]);
    await waitForCheckpoints(dir, 1);
    const progress = await readJsonIfPresent(join(dir, ".ckptguard/progress.json"));
    killGroupQuietly(progress.child_pid, "SIGKILL");
    await waitFor("the relaunch", async () => (await readJsonIfPresent(join(dir, ".ckptguard/progress.json")))?.restarts === 1, 15_000);
    const first = join(dir, "ckpt_epoch_0001.pt");
    await truncate(first, Math.floor((await stat(first)).size / 2));
    const result = await run.exited;
    const exitedAt = Date.now();
    const runLog = await readFile(join(dir, ".ckptguard/run.log"), "utf8");
    const complete = /^\[([^\]]+)\] ckptguard: run complete$/m.exec(runLog);
    finished = { code: result.code, stderr: result.stderr, runLog, exitedAfterCompleteMs: complete ? exitedAt - Date.parse(complete[1]!) : NaN };
  });

  after(async () => {
    for (const res of hanging) res.destroy();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("completes the run (exit 0) and posts stale, crash, restart, invalid_checkpoint and finish events", () => {
    assert.equal(finished?.code, 0, finished?.stderr);
    const kinds = received.filter((r) => r.path === "/hook").map((r) => r.body.event);
    for (const kind of ["stale", "crash", "restart", "invalid_checkpoint", "finish"]) assert.ok(kinds.includes(kind), `${kind} in ${kinds.join(", ")}`);
    assert.equal(kinds.at(-1), "finish");
    assert.ok(kinds.indexOf("crash") < kinds.indexOf("restart"));
  });

  it("carries a Slack-compatible text and the facts of each event", () => {
    const byKind = (kind: string): any => received.find((r) => r.path === "/hook" && r.body.event === kind)?.body;
    for (const r of received) assert.match(r.body.text, /^ckptguard: run \//);
    assert.equal(byKind("crash").details.signal, "SIGKILL");
    assert.equal(byKind("restart").details.restart, 1);
    assert.equal(byKind("invalid_checkpoint").details.verdict, "corrupt");
    assert.ok(byKind("invalid_checkpoint").details.codes.length >= 1);
    assert.equal(byKind("stale").details.code, "SAVE_GAP");
    assert.deepEqual([byKind("finish").details.status, byKind("finish").details.restarts], ["completed", 1]);
    assert.equal(byKind("finish").dir, join(root, "run"));
  });

  it("is not held up by a webhook that never answers: the run goes on, and exit waits at most the 5 s flush", () => {
    for (const line of ["command killed by SIGKILL", "restart 1 of 5", "ckpt_epoch_0001.pt: corrupt", "run complete"]) assert.ok(finished?.runLog.includes(line), line);
    assert.ok(finished!.exitedAfterCompleteMs < 7_000, `exited ${finished!.exitedAfterCompleteMs} ms after "run complete"`);
    assert.ok(hanging.length >= 1, "the silent webhook was called");
  });
});
