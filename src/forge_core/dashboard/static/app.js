// Forge dashboard: one EventSource to the plant; every value is written with textContent (no markup
// from the plant reaches the page). No framework, no build step.
"use strict";

const STATUS_WORDS = new Set(["UP", "DEGRADED", "DOWN"]);
const STATE_STATUS = { running: "UP", WORKING: "UP", connected: "UP", starting: "DEGRADED", restarting: "DEGRADED",
  RECOVERY: "DEGRADED", WAITING_FOR_ASSIGNMENT: "DEGRADED", killed: "DOWN", failed: "DOWN", crashed: "DOWN",
  stopped: "DOWN", KILLED: "DOWN", disconnected: "DOWN" };
let info = { actions: false };
let source = null;
let lastState = null;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function pill(word) {
  const status = STATUS_WORDS.has(word) ? word : (STATE_STATUS[word] || "");
  return el("span", word, "pill " + status);
}

function cell(value) {
  const td = el("td");
  if (typeof value === "string" && (STATUS_WORDS.has(value) || value in STATE_STATUS)) td.append(pill(value));
  else td.textContent = value === null || value === undefined ? "–" : String(value);
  return td;
}

function fill(tableId, rows, build) {
  const body = $(tableId).tBodies[0];
  const fresh = document.createDocumentFragment();
  for (const row of rows) fresh.append(build(row));
  body.replaceChildren(fresh);
}

function ago(seconds) {
  return seconds === null || seconds === undefined ? "–" : seconds + " s ago";
}

function when(epoch) {
  return new Date(epoch * 1000).toISOString().slice(11, 23);
}

function button(label, onClick) {
  const b = el("button", label, "act");
  b.addEventListener("click", onClick);
  return b;
}

async function act(path) {
  const token = $("token").value || sessionStorage.getItem("forge-token") || "";
  sessionStorage.setItem("forge-token", token);
  const reply = await fetch("api/actions/" + path, { method: "POST", headers: { authorization: "Bearer " + token } });
  const body = await reply.json().catch(() => ({}));
  $("footer").textContent = reply.ok ? "done: " + JSON.stringify(body) : "refused: " + (body.error || reply.status);
}

function render(state) {
  lastState = state;
  if (state.error) { $("footer").textContent = state.error; return; }
  const plant = state.plant;
  $("plant").textContent = plant.name;
  document.title = "Forge – " + plant.name;
  $("meta").textContent = `profile ${plant.profile || "–"} · pid ${plant.pid} · up ${Math.round(plant.uptime)} s`;
  const links = $("links");
  links.replaceChildren(...Object.entries(plant.links || {}).map(([prefix, url]) => {
    const a = el("a", prefix); a.href = url; return a;
  }));

  fill("components", state.components, (c) => {
    const tr = el("tr");
    tr.dataset.instance = c.instance;
    tr.dataset.status = c.status;
    const name = el("td", c.instance, "mono");
    if (c.dashboard) { const a = el("a", " ↗"); a.href = c.dashboard; a.title = "its own dashboard"; name.append(a); }
    tr.append(name, cell(c.component), cell(c.status), el("td", c.state), el("td", c.restarts),
      el("td", Object.entries(c.health || {}).map(([k, v]) => k + "=" + v).join(" ") || "–", "mono"),
      el("td", c.last_error || "", "mono error"));
    const actions = el("td");
    if (info.actions) {
      actions.append(button("kill", () => act("kill/" + encodeURIComponent(c.instance))),
        button("revive", () => act("revive/" + encodeURIComponent(c.instance))));
    }
    tr.append(actions);
    return tr;
  });

  fill("transports", state.transports, (t) => {
    const tr = el("tr");
    tr.append(el("td", t.name, "mono"), el("td", t.type), cell(t.connected ? "UP" : "DOWN"), el("td", t.messages),
      el("td", t.rate), el("td", t.detail, "mono"));
    return tr;
  });

  fill("leases", state.leases, (l) => {
    const tr = el("tr");
    tr.dataset.lease = l.lease;
    tr.append(el("td", l.lease, "mono"), el("td", l.leader || "none", "mono"), el("td", l.epoch ?? "–"),
      el("td", (l.candidates || []).join(", ") || "–", "mono"));
    const actions = el("td");
    if (info.actions && l.leader) actions.append(button("failover", () => act("failover/" + encodeURIComponent(l.lease))));
    tr.append(actions);
    return tr;
  });

  fill("sources", state.sources, (s) => {
    const tr = el("tr");
    tr.dataset.source = s.source;
    tr.dataset.status = s.status;
    tr.append(el("td", s.source, "mono"), cell(s.status),
      el("td", s.last_beat_ago !== null && s.last_beat_ago !== undefined ? ago(s.last_beat_ago)
        : "changed " + ago(s.changed_ago)), el("td", s.monitor || "–", "mono"));
    return tr;
  });

  const dl = state.dead_letters;
  $("dl-total").textContent = dl.total;
  $("dl-clear").hidden = !info.actions;
  $("dl-reasons").replaceChildren(...Object.entries(dl.by_reason).map(([reason, n]) => {
    const chip = el("span", `${reason}: ${n}`); chip.dataset.reason = reason; return chip;
  }));
  if (!$("dl-search").value) renderLetters(dl.latest);

  fill("checks", state.checks, (c) => {
    const tr = el("tr");
    tr.dataset.passed = String(c.passed);
    const verdict = el("td");
    verdict.append(el("span", c.passed ? "pass" : "fail", "pill " + (c.passed ? "pass" : "fail")));
    tr.append(verdict, el("td", c.component, "mono"), el("td", c.name), el("td", c.detail));
    return tr;
  });

  fill("topics", state.topics, (t) => {
    const tr = el("tr");
    tr.append(el("td", t.topic, "mono"), el("td", t.messages), el("td", t.rate));
    return tr;
  });
  const select = $("tail-topic");
  const known = new Set([...select.options].map((o) => o.value));
  for (const t of state.topics) {
    if (!known.has(t.topic)) select.append(new Option(t.topic, t.topic));
  }
  $("tail-note").textContent = state.tail.sampled_out ? `(${state.tail.sampled_out} not kept: sampled)` : "";

  renderPanels(state.panels || []);
  $("footer").dataset.updated = String(Date.now());
}

function renderLetters(letters) {
  fill("dead-letters", letters, (d) => {
    const tr = el("tr");
    tr.dataset.reason = d.reason;
    tr.dataset.id = d.id;
    const errors = (d.errors || []).map((e) => (e.path || e.pointer || "") + " " + (e.message || JSON.stringify(e)))
      .join("; ") || d.detail;
    tr.append(el("td", when(d.time)), cell(d.reason), el("td", d.topic, "mono"), el("td", d.type || "–", "mono"),
      el("td", errors, "error"), el("td", d.excerpt, "mono"));
    return tr;
  });
}

function renderPanels(panels) {
  const host = $("panels");
  host.replaceChildren(...panels.map((p) => {
    const card = el("section", null, "card panel");
    card.dataset.panel = p.title;
    card.append(el("h2", p.title));
    const entries = Object.entries(p.fields || {});
    if (entries.length) {
      const dl = el("dl", null, "fields");
      for (const [k, v] of entries) dl.append(el("dt", k), el("dd", v === null ? "–" : v));
      card.append(dl);
    }
    for (const t of p.tables || []) {
      card.append(el("h3", t.title));
      const table = el("table");
      const head = el("tr");
      for (const c of t.columns) head.append(el("th", c));
      table.append(el("thead")); table.tHead.append(head);
      const body = el("tbody");
      for (const row of t.rows) { const tr = el("tr"); for (const v of row) tr.append(cell(v)); body.append(tr); }
      table.append(body);
      card.append(table);
    }
    return card;
  }));
}

function renderTail(rows) {
  fill("tail", rows, (m) => {
    const tr = el("tr");
    tr.append(el("td", when(m.at)), el("td", m.topic, "mono"), el("td", m.type, "mono"), el("td", m.source, "mono"),
      el("td", m.body, "mono"));
    return tr;
  });
}

function connect() {
  if (source) source.close();
  const params = new URLSearchParams({ topic: $("tail-topic").value, q: $("tail-filter").value });
  source = new EventSource("api/events?" + params);
  source.addEventListener("open", () => { const l = $("live"); l.textContent = "live"; l.className = "pill UP"; });
  source.addEventListener("error", () => { const l = $("live"); l.textContent = "reconnecting"; l.className = "pill DOWN"; });
  source.addEventListener("state", (e) => render(JSON.parse(e.data)));
  source.addEventListener("tail", (e) => renderTail(JSON.parse(e.data)));
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

async function searchLetters() {
  const q = $("dl-search").value;
  if (!q) { if (lastState) renderLetters(lastState.dead_letters.latest); return; }
  const reply = await fetch("api/dead-letters?" + new URLSearchParams({ q }));
  renderLetters((await reply.json()).letters);
}

async function main() {
  info = await (await fetch("api/info")).json();
  $("token-box").hidden = !info.actions;
  $("token").value = sessionStorage.getItem("forge-token") || "";
  $("dl-search").addEventListener("input", debounce(searchLetters, 250));
  $("dl-clear").addEventListener("click", () => act("clear-dead-letters"));
  $("tail-topic").addEventListener("change", connect);  // the tail filter travels with the stream
  $("tail-filter").addEventListener("input", debounce(connect, 400));
  connect();
}

main();
