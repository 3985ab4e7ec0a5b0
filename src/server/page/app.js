// The ckptguard dashboard: vanilla JS, no build step. Data comes from the JSON API and
// stays live through the server's event stream (/api/events). Every value from the
// server is written with textContent, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const runs = new Map(); // id -> summary
  // The run the address names (a reload, a shared link): selected once the run list has it.
  const linkedId = location.hash.slice(1) || null;
  let selectedId = null;
  let detail = null;
  let skewMs = 0; // server clock minus ours
  const chart = window.ckptguardChart.create($("chart"), $("chart-empty")); // chart.js
  let refetchTimer = null;
  let lastLogBytes = -1;

  // ---- formatting -------------------------------------------------------------------
  function formatDuration(ms) {
    if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
    const s = ms / 1000;
    if (s < 10) return `${s.toFixed(1)}s`;
    if (s < 60) return `${Math.round(s)}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h${String(m % 60).padStart(2, "0")}m`;
    return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
  }
  const now = () => Date.now() + skewMs;
  const num = (v, digits = 4) => (v === null || v === undefined ? "–" : Number(v).toPrecision(digits));

  function positionText(r) {
    const parts = [];
    if (r.epoch !== null) parts.push(`epoch ${r.epoch}${r.total_epochs !== null ? `/${r.total_epochs}` : ""}`);
    if (r.step !== null) parts.push(`step ${r.step}${r.total_steps !== null ? `/${r.total_steps}` : ""}`);
    if (r.units) parts.push(`${r.units.done}/${r.units.total} units done`);
    return parts.join(", ") || "no progress yet";
  }

  /** Last-save age coloured against --max-gap: green under 3/4 of it, amber up to it, red past it. */
  function saveAge(r) {
    if (!r.last_save_at) return { text: "no save yet", cls: r.max_gap_ms && r.state === "running" ? "age-warn" : "age-none" };
    const age = now() - Date.parse(r.last_save_at);
    const text = `saved ${formatDuration(age)} ago`;
    if (!r.max_gap_ms || r.state !== "running") return { text, cls: "age-none" };
    return { text, cls: age > r.max_gap_ms ? "age-late" : age > 0.75 * r.max_gap_ms ? "age-warn" : "age-ok" };
  }

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- run list ---------------------------------------------------------------------
  function renderList() {
    const list = $("run-list");
    const sorted = [...runs.values()].sort((a, b) => a.name.localeCompare(b.name));
    $("no-runs").hidden = sorted.length > 0;
    const keep = new Set(sorted.map((r) => r.id));
    for (const li of [...list.children]) if (!keep.has(li.dataset.runId)) li.remove();
    sorted.forEach((r, index) => {
      let li = list.querySelector(`li[data-run-id="${r.id}"]`);
      if (!li) li = createRunItem(r.id);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      fillRunItem(li, r);
    });
    if ((!selectedId || !runs.has(selectedId)) && sorted.length > 0) select(!selectedId && runs.has(linkedId) ? linkedId : sorted[0].id);
  }

  function createRunItem(id) {
    const li = el("li", { class: "run", "data-run-id": id });
    const button = el("button", { type: "button" });
    const top = el("div", { class: "run-top" });
    top.append(el("span", { class: "name" }), el("span", { class: "badge state" }));
    const bar = el("div", { class: "bar" });
    bar.append(el("div", { class: "fill" }));
    const meta = el("div", { class: "run-meta" });
    meta.append(el("span", { class: "progress-text" }), el("span", { class: "eta" }), el("span", { class: "save-age" }), el("span", { class: "restarts" }));
    button.append(top, bar, meta);
    button.addEventListener("click", () => select(id));
    li.append(button);
    return li;
  }

  function fillRunItem(li, r) {
    li.className = `run state-${r.state}${r.id === selectedId ? " selected" : ""}`;
    li.dataset.state = r.state;
    li.querySelector(".name").textContent = r.name;
    const badge = li.querySelector(".badge");
    badge.className = `badge state state-${r.state}`;
    badge.textContent = r.state;
    badge.title = r.health;
    li.querySelector(".fill").style.width = `${Math.round((r.fraction ?? 0) * 100)}%`;
    li.querySelector(".progress-text").textContent = positionText(r);
    li.querySelector(".eta").textContent = r.eta_seconds !== null && r.state === "running" ? `ETA ${formatDuration(r.eta_seconds * 1000)}` : "";
    const age = saveAge(r);
    const ageNode = li.querySelector(".save-age");
    ageNode.textContent = age.text;
    ageNode.className = `save-age ${age.cls}`;
    li.querySelector(".restarts").textContent = r.restarts > 0 ? `${r.restarts} restart${r.restarts === 1 ? "" : "s"}` : "";
  }

  // ---- detail -----------------------------------------------------------------------
  function select(id) {
    selectedId = id;
    if (location.hash.slice(1) !== id) history.replaceState(null, "", `#${id}`);
    for (const li of $("run-list").children) li.classList.toggle("selected", li.dataset.runId === id);
    detail = null;
    lastLogBytes = -1;
    $("detail").hidden = false;
    refetch(true);
  }

  function scheduleRefetch() {
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(() => refetch(false), 200);
  }

  async function getJson(path) {
    const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function refetch(all) {
    const id = selectedId;
    if (!id) return;
    const summary = runs.get(id);
    const wantLog = all || !summary || summary.log_bytes !== lastLogBytes;
    try {
      const [d, metrics, log] = await Promise.all([
        getJson(`/api/runs/${id}`), getJson(`/api/runs/${id}/metrics`),
        wantLog ? getJson(`/api/runs/${id}/log?tail=300`).catch(() => ({ lines: ["(no readable run.log)"], size: -2 })) : null,
      ]);
      if (id !== selectedId) return;
      skewMs = d.now - Date.now();
      detail = d;
      renderDetail();
      chart.render(metrics);
      if (log) {
        lastLogBytes = log.size;
        renderLog(log);
      }
    } catch (error) {
      $("d-facts").dataset.error = String(error);
    }
  }

  function renderDetail() {
    if (!detail) return;
    const r = runs.get(detail.run.id) || detail.run;
    $("d-name").textContent = r.name;
    const badge = $("d-state");
    badge.className = `badge state-${r.state}`;
    badge.textContent = r.health === r.state ? r.state : `${r.state} (${r.health})`;
    const fill = $("d-fill");
    fill.style.width = `${Math.round((r.fraction ?? 0) * 100)}%`;
    fill.className = `fill state-${r.state}`;
    renderFacts(r);
    renderWarnings(r);
    renderWorkers(r);
    renderTimeline(detail.checkpoints);
    renderRestarts(detail.restarts);
  }

  function renderFacts(r) {
    const facts = $("d-facts");
    facts.replaceChildren();
    const age = saveAge(r);
    const rows = [
      ["progress", positionText(r), "d-progress"],
      ["loss", num(r.loss), ""],
      ["ETA", r.eta_seconds !== null && r.state === "running" ? formatDuration(r.eta_seconds * 1000) : "–", "d-eta"],
      ["last save", age.text.replace(/^saved /, ""), `d-age ${age.cls}`],
      ["max gap", r.max_gap_ms ? formatDuration(r.max_gap_ms) : "not set", ""],
      ["latest valid", r.latest_valid ?? "none", ""],
      ["best", r.best ? `${r.best.name}${r.best.metric ? ` (${r.best.metric.name} ${num(r.best.metric.value)})` : ""}` : "none", ""],
      ["checkpoints", `${r.checkpoints.total} (${r.checkpoints.invalid} invalid)`, ""],
      ["directory", r.dir, ""],
    ];
    if (detail.heartbeat_at && r.state !== "finished") rows.push(["heartbeat", `${formatDuration(now() - Date.parse(detail.heartbeat_at))} ago`, ""]);
    for (const [label, value, cls] of rows) facts.append(el("dt", {}, label), el("dd", { class: cls }, value));
  }

  function renderWarnings(r) {
    const list = $("d-warnings");
    list.replaceChildren();
    for (const w of r.warnings) list.append(el("li", {}, `${w.code}: ${w.message}`));
    if (r.outcome) list.append(el("li", { class: "outcome" }, `${r.outcome.code}: ${r.outcome.message}`));
  }

  // `run --workers`: one row per worker slot, from progress.json's `workers`.
  function renderWorkers(r) {
    $("workers").hidden = !r.workers;
    if (!r.workers) return;
    const u = r.units;
    $("d-units").textContent = u ? `${u.done}/${u.total} units done, ${u.running} running, ${u.pending} pending${u.failed ? `, ${u.failed} failed` : ""}` : "";
    const body = $("worker-table").querySelector("tbody");
    body.replaceChildren();
    for (const w of r.workers) {
      const tr = el("tr", { "data-worker": String(w.worker), "data-status": w.status });
      const started = w.started ? `${formatDuration(now() - Date.parse(w.started))} ago` : "–";
      tr.append(el("td", {}, String(w.worker)), el("td", { class: `worker-${w.status}` }, w.status), el("td", {}, w.pid ?? "–"), el("td", {}, w.gpu ?? "–"),
        el("td", {}, w.units.join(", ") || "–"), el("td", {}, String(w.attempts)), el("td", {}, started), el("td", {}, String(w.launches)), el("td", {}, String(w.failures)));
      body.append(tr);
    }
  }

  function renderTimeline(checkpoints) {
    const line = $("timeline");
    line.replaceChildren();
    for (const c of checkpoints) {
      const mark = el("span", { class: `mark v-${c.verdict}${c.best ? " best" : ""}${c.latest_valid ? " latest" : ""}`, "data-verdict": c.verdict, "data-name": c.name });
      const where = [c.epoch !== null ? `epoch ${c.epoch}` : "", c.step !== null ? `step ${c.step}` : "", c.loss !== null ? `loss ${num(c.loss)}` : ""].filter(Boolean).join(", ");
      const problem = c.problems.find((p) => p.severity === "error");
      mark.title = `${c.name}: ${c.verdict}${where ? ` (${where})` : ""}${problem ? ` – ${problem.code}: ${problem.message}` : ""}${c.best ? " – best" : ""}${c.latest_valid ? " – latest valid" : ""}`;
      mark.setAttribute("role", "img");
      mark.setAttribute("aria-label", mark.title);
      line.append(mark);
    }
    if (checkpoints.length === 0) line.append(el("span", { class: "empty" }, "no checkpoint yet"));
    const body = $("ckpt-table").querySelector("tbody");
    body.replaceChildren();
    for (const c of [...checkpoints].reverse().slice(0, 100)) {
      const problem = c.problems.find((p) => p.severity === "error");
      const tags = [c.best ? "★ best" : "", c.latest_valid ? "latest" : ""].filter(Boolean).join(", ");
      const tr = el("tr", { "data-verdict": c.verdict });
      tr.append(el("td", {}, `${c.name}${tags ? ` (${tags})` : ""}`), el("td", {}, c.epoch ?? "–"), el("td", {}, c.step ?? "–"), el("td", {}, num(c.loss)),
        el("td", { class: c.verdict === "valid" ? "verdict-valid" : "verdict-bad", title: problem ? `${problem.code}: ${problem.message}` : "" }, problem ? `${c.verdict} (${problem.code})` : c.verdict));
      body.append(tr);
    }
  }

  function renderRestarts(restarts) {
    $("d-restarts").textContent = `${restarts.count}${restarts.max !== null ? ` of ${restarts.max}` : ""}`;
    const list = $("restart-list");
    list.replaceChildren();
    const shown = restarts.events.filter((e) => e.kind !== "exit" || e.code !== 0).slice(-30).reverse();
    for (const e of shown) {
      const li = el("li", { class: `ev-${e.kind}` });
      li.append(el("time", { dateTime: e.at }, new Date(e.at).toLocaleTimeString()), document.createTextNode(e.text));
      list.append(li);
    }
    if (shown.length === 0) list.append(el("li", { class: "empty" }, "none"));
  }

  // The log follows its end until the reader scrolls up, and again once they scroll back down.
  let logFollows = true;
  $("log").addEventListener("scroll", () => {
    const pre = $("log");
    logFollows = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  });

  function renderLog(log) {
    const pre = $("log");
    pre.textContent = log.lines.join("\n") || "(empty)";
    if (logFollows) pre.scrollTop = pre.scrollHeight;
  }

  // ---- live updates -----------------------------------------------------------------
  function connect() {
    const conn = $("conn");
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => {
      conn.textContent = "live";
      conn.className = "conn conn-live";
    });
    source.addEventListener("error", () => {
      conn.textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
      conn.className = `conn ${source.readyState === EventSource.CLOSED ? "conn-down" : "conn-wait"}`;
    });
    source.addEventListener("runs", (event) => {
      const message = JSON.parse(event.data);
      skewMs = message.now - Date.now();
      runs.clear();
      for (const r of message.runs) runs.set(r.id, r);
      renderList();
      if (selectedId) scheduleRefetch();
    });
    source.addEventListener("run", (event) => {
      const message = JSON.parse(event.data);
      skewMs = message.now - Date.now();
      runs.set(message.run.id, message.run);
      renderList();
      if (message.run.id === selectedId) scheduleRefetch();
    });
    source.addEventListener("removed", (event) => {
      runs.delete(JSON.parse(event.data).id);
      if (!runs.has(selectedId)) {
        selectedId = null;
        $("detail").hidden = true;
      }
      renderList();
    });
  }

  // Ages move with the clock, not with events.
  setInterval(() => {
    for (const li of $("run-list").children) {
      const r = runs.get(li.dataset.runId);
      if (r) fillRunItem(li, r);
    }
    if (detail) renderFacts(runs.get(detail.run.id) || detail.run);
  }, 1000);

  window.addEventListener("hashchange", () => {
    const id = location.hash.slice(1);
    if (id && id !== selectedId && runs.has(id)) select(id);
  });

  connect();
})();
