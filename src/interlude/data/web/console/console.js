// The lso-interlude console: the partner's own APIs, read and driven from the browser.
// Every view polls the same endpoints an SP (or the operator) uses; the buyer picked at the top is sent as
// X-Interlude-Buyer (or the token as a bearer token), so a buyer sees only its own services, orders and alarms.
"use strict";

const MEF = "/mefApi/interlude";
const API = {
  inventory: `${MEF}/serviceInventory/v2`,
  ordering: `${MEF}/serviceOrderingManagement/v1`,
  alarms: `${MEF}/alarmManagement/v3`,
  sft: `${MEF}/serviceFunctionTesting/v3`,
  pm: `${MEF}/performanceMonitoring/v5`,
  streaming: `${MEF}/streamingManagement/v1`,
  partner: "/interlude/v1",
};
const POLL_MS = 1000;
const state = { view: "network", service: null, order: null, itemHistory: {}, pm: null, topology: null };
const $ = (sel) => document.querySelector(sel);

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const token = $("#token").value.trim();
  const buyer = $("#buyer").value;
  if (token) h["Authorization"] = `Bearer ${token}`;
  else if (buyer) h["X-Interlude-Buyer"] = buyer;
  return h;
}

async function call(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const reason = Array.isArray(data) ? data.map((e) => e.reason).join("; ") : (data && data.reason) || res.statusText;
    throw new Error(`${method} ${path}: ${res.status} ${reason}`);
  }
  return data;
}

function say(message) { $("#status").textContent = message || ""; }

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fillTable(sel, rows, render) {
  const body = $(`${sel} tbody`);
  body.replaceChildren(...rows.map((row) => { const tr = document.createElement("tr"); render(tr, row); return tr; }));
}

function fillSelect(sel, values) {
  const select = $(sel);
  const current = select.value;
  const wanted = values.join("\n");
  if (select.dataset.values === wanted) return;
  select.dataset.values = wanted;
  select.replaceChildren(...values.map((v) => { const o = document.createElement("option"); o.value = o.textContent = v; return o; }));
  if (values.includes(current)) select.value = current;
}

// Network -------------------------------------------------------------------------------------------------

function portClass(p) {
  if (p.adminState === "down") return "admin-down";
  if (p.operState === "up") return "up";
  if (p.operState === "down") return "down";
  return "unknown";
}

function layout(topology) {
  const nodes = topology.nodes;
  const centre = { x: 400, y: 260 };
  const pos = {};
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
    pos[n.name] = { x: centre.x + 250 * Math.cos(a), y: centre.y + 170 * Math.sin(a) };
  });
  const peer = {};
  for (const link of topology.links) {
    const [a, b] = link.endpoints;
    peer[a] = b; peer[b] = a;
  }
  const ports = {};
  for (const n of nodes) {
    const c = pos[n.name];
    const free = n.interfaces.filter((p) => !peer[`${n.name}:${p.name}`]);
    let k = 0;
    for (const p of n.interfaces) {
      const id = `${n.name}:${p.name}`;
      let angle;
      if (peer[id]) {
        const o = pos[peer[id].split(":")[0]];
        angle = Math.atan2(o.y - c.y, o.x - c.x);
      } else {
        const away = Math.atan2(c.y - centre.y, c.x - centre.x);
        angle = away + ((k - (free.length - 1) / 2) * Math.PI) / Math.max(4, free.length + 1);
        k += 1;
      }
      ports[id] = { x: c.x + 58 * Math.cos(angle), y: c.y + 44 * Math.sin(angle), angle };
    }
  }
  return { pos, ports };
}

function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawTopology(topology) {
  const { pos, ports } = layout(topology);
  const states = {};
  for (const n of topology.nodes) for (const p of n.interfaces) states[`${n.name}:${p.name}`] = p;
  const g = [];
  for (const link of topology.links) {
    const [a, b] = link.endpoints;
    const down = [a, b].some((id) => states[id] && portClass(states[id]) !== "up");
    g.push(svg("line", { class: `link${down ? " down" : ""}`, x1: ports[a].x, y1: ports[a].y, x2: ports[b].x,
      y2: ports[b].y, "data-link": `${a}|${b}` }));
  }
  for (const n of topology.nodes) {
    const c = pos[n.name];
    const group = svg("g", { class: "node", "data-node": n.name });
    group.appendChild(svg("rect", { x: c.x - 46, y: c.y - 24, width: 92, height: 48, rx: 10 }));
    group.appendChild(svg("text", { x: c.x, y: c.y + 5, "text-anchor": "middle" }, n.name));
    g.push(group);
    for (const p of n.interfaces) {
      const id = `${n.name}:${p.name}`;
      const q = ports[id];
      const circle = svg("circle", { class: `port ${portClass(p)}`, cx: q.x, cy: q.y, r: 8, "data-port": id,
        "data-oper": p.operState, "data-admin": p.adminState });
      circle.appendChild(svg("title", {}, `${id} (${p.role}): admin ${p.adminState}, oper ${p.operState}`));
      g.push(circle);
      g.push(svg("text", { class: "port-label", x: q.x + 14 * Math.cos(q.angle), y: q.y + 14 * Math.sin(q.angle) + 3,
        "text-anchor": Math.cos(q.angle) < -0.2 ? "end" : Math.cos(q.angle) > 0.2 ? "start" : "middle" }, p.name));
    }
  }
  $("#topology").replaceChildren(...g);
  fillSelect("#fault-port", Object.keys(states));
}

async function refreshNetwork() {
  const topology = await call("GET", `${API.partner}/topology`);
  state.topology = topology;
  $("#partner-name").textContent = topology.name;
  drawTopology(topology);
  await refreshScenario();
  const faults = await call("GET", `${API.partner}/faults`);
  fillTable("#faults", faults, (tr, f) => {
    tr.dataset.fault = f.id;
    cell(tr, f.id); cell(tr, f.type); cell(tr, `${f.node}:${f.interface}`);
    cell(tr, f.type === "delay" ? `${f.delayMs} ms` : f.type === "jitter" ? `${f.jitterMs} ms`
      : f.type === "loss" ? `${f.lossPercent} %` : "");
    const button = document.createElement("button");
    button.textContent = "Clear";
    button.className = "clear-fault";
    button.dataset.id = f.id;
    button.onclick = (ev) => { ev.stopPropagation(); act(() => call("DELETE", `${API.partner}/faults/${f.id}`)); };
    tr.appendChild(document.createElement("td")).appendChild(button);
  });
}

async function injectFault(ev) {
  ev.preventDefault();
  const [node, iface] = $("#fault-port").value.split(":");
  const type = $("#fault-type").value;
  const value = parseFloat($("#fault-value").value || "0");
  const body = { type, node, interface: iface };
  if (type === "delay") body.delayMs = value;
  if (type === "jitter") body.jitterMs = value;
  if (type === "loss") body.lossPercent = value;
  await act(() => call("POST", `${API.partner}/faults`, body));
}

// Scenarios: faults over time, played by the partner (the shipped examples of emulator/scenarios/)
const SCENARIOS = {
  "uplink-trouble": { name: "uplink-trouble", description: "5 ms on pe1-agg1, cut at t=10 s, repaired at t=20 s",
    steps: [{ at: 0, name: "slow", inject: { type: "delay", node: "pe1", interface: "up1", delayMs: 5 } },
      { at: 10, name: "cut", inject: { type: "linkDown", node: "pe1", interface: "up1" } }, { at: 20, clear: "cut" }] },
  "flapping-uni": { name: "flapping-uni", description: "pe1:uni1 down for 5 s every 30 s", repeat: true,
    steps: [{ at: 25, name: "down", inject: { type: "linkDown", node: "pe1", interface: "uni1" } }, { at: 30, clear: "down" }] },
  "lossy-metro": { name: "lossy-metro", description: "2 % loss and 3 ms +/- 1 ms on pe2-agg1 for a minute",
    steps: [{ at: 5, name: "loss", inject: { type: "loss", node: "pe2", interface: "up1", lossPercent: 2 } },
      { at: 5, name: "delay", inject: { type: "jitter", node: "pe2", interface: "up1", delayMs: 3, jitterMs: 1 } },
      { at: 65, clear: "loss" }, { at: 65, clear: "delay" }] },
  "cut-pe2-now": { name: "cut-pe2-now", description: "pe2's uplink down for a minute",
    steps: [{ at: 0, name: "cut", inject: { type: "linkDown", node: "pe2", interface: "up1" } }, { at: 60, clear: "cut" }] },
};

async function refreshScenario() {
  const status = await call("GET", `${API.partner}/scenario`);
  const name = status.scenario ? status.scenario.name : "";
  $("#scenario-log").textContent = status.log.length
    ? `${status.playing ? "playing" : "stopped"} ${name}\n${status.log.join("\n")}` : "(none playing)";
  $("#scenario-log").dataset.playing = String(status.playing);
}

// Services, orders, alarms ---------------------------------------------------------------------------------

async function refreshServices() {
  const services = await call("GET", `${API.inventory}/service?limit=1000`);
  const buyers = {};
  if (state.topology) for (const s of state.topology.services) buyers[s.id] = s.buyer;
  fillTable("#services", services, (tr, s) => {
    tr.dataset.service = s.id;
    if (s.id === state.service) tr.className = "selected";
    const cfg = s.serviceConfiguration || {};
    const oper = (cfg.operationalState || {}).state;
    cell(tr, s.id); cell(tr, buyers[s.id] || ""); cell(tr, s.serviceType); cell(tr, s.state);
    cell(tr, (cfg.administrativeState || {}).state); cell(tr, oper, `oper ${oper}`);
    tr.onclick = () => { state.service = s.id; showService(); };
  });
  const ids = services.map((s) => s.id).filter((id) => /^(ovc|ia)-\d+$/.test(id));
  fillSelect("#pm-service", ids);
  fillSelect("#test-service", ids);
}

async function showService() {
  if (!state.service) return;
  $("#service-selected").textContent = state.service;
  const body = await call("GET", `${API.inventory}/service/${state.service}`);
  $("#service-payload").textContent = JSON.stringify(body, null, 2);
}

async function refreshOrders() {
  const orders = await call("GET", `${API.ordering}/serviceOrder?limit=50`);
  const now = new Date().toISOString();
  for (const o of orders) {
    for (const it of o.serviceOrderItem || []) {
      const key = `${o.id}/${it.id}`;
      const seen = state.itemHistory[key] || (state.itemHistory[key] = []);
      if (!seen.length || seen[seen.length - 1].state !== it.state) seen.push({ state: it.state, at: now });
    }
  }
  fillTable("#orders", orders, (tr, o) => {
    tr.dataset.order = o.id;
    if (o.id === state.order) tr.className = "selected";
    cell(tr, o.id); cell(tr, o.state, o.state); cell(tr, o.orderDate);
    cell(tr, (o.serviceOrderItem || []).map((i) => `${i.id}:${i.action} ${i.state}`).join(", "));
    tr.onclick = () => { state.order = o.id; showOrder(o); };
  });
  const selected = orders.find((o) => o.id === state.order);
  if (selected) showOrder(selected);
}

function showOrder(o) {
  $("#order-selected").textContent = o.id;
  const lines = [`ordered ${o.orderDate || "?"}`];
  if (o.startDate) lines.push(`started ${o.startDate}`);
  for (const it of o.serviceOrderItem || []) {
    const history = (state.itemHistory[`${o.id}/${it.id}`] || []).map((h) => `${h.state} (seen ${h.at})`).join(" → ");
    const service = (it.service || {}).id || "new service";
    const errors = (it.errorMessage || []).map((e) => e.reason).join("; ");
    lines.push(`item ${it.id} ${it.action} ${service}: ${history || it.state}${errors ? ` — ${errors}` : ""}`);
  }
  if (o.completionDate) lines.push(`${o.state} ${o.completionDate}`);
  $("#order-timeline").replaceChildren(...lines.map((l) => { const li = document.createElement("li"); li.textContent = l; return li; }));
}

async function refreshAlarms() {
  const alarms = await call("GET", `${API.alarms}/alarm?limit=200`);
  const active = alarms.filter((a) => a.state !== "cleared").length;
  $("#alarm-count").textContent = active ? String(active) : "";
  fillTable("#alarms", alarms, (tr, a) => {
    tr.dataset.alarm = a.id;
    tr.dataset.state = a.state;
    cell(tr, a.id); cell(tr, a.state, a.state); cell(tr, a.perceivedSeverity, a.perceivedSeverity);
    cell(tr, a.alarmType); cell(tr, a.alarmRaisedTime); cell(tr, a.alarmClearedTime);
    cell(tr, (a.affectedService || []).map((s) => s.id).join(", "));
    const actions = tr.appendChild(document.createElement("td"));
    if (a.state === "unAcknowledged") actions.appendChild(alarmButton("Acknowledge", "ack-alarm", a.id, "acknowledge"));
    if (a.state !== "cleared") actions.appendChild(alarmButton("Clear", "clear-alarm", a.id, "clear"));
  });
}

function alarmButton(label, cls, id, action) {
  const button = document.createElement("button");
  button.textContent = label;
  button.className = cls;
  button.dataset.id = id;
  button.onclick = (ev) => { ev.stopPropagation(); act(() => call("POST", `${API.partner}/alarms/${id}/${action}`)); };
  return button;
}

// Tests ------------------------------------------------------------------------------------------------------

async function refreshTests() {
  const jobs = await call("GET", `${API.sft}/testJob?limit=20`);
  const results = await call("GET", `${API.sft}/testResult?limit=50`);
  const byJob = {};
  for (const r of results) {
    const job = (r.testJob || {}).id || r.testJobId;
    if (job && !byJob[job]) byJob[job] = r;
  }
  const details = {};
  await Promise.all(Object.values(byJob).slice(0, 20).map(async (r) => {
    details[r.id] = await call("GET", `${API.sft}/testResult/${r.id}`);
  }));
  fillTable("#tests", jobs, (tr, j) => {
    tr.dataset.job = j.id;
    const r = byJob[j.id] ? details[byJob[j.id].id] : null;
    const m = (r && r.serviceSpecificTestResultConfiguration) || {};
    cell(tr, j.id); cell(tr, (j.relatedServiceFrom || {}).id); cell(tr, j.state, j.state);
    cell(tr, m.verdict, m.verdict); cell(tr, (m.twoWayFrameDelay || {}).median); cell(tr, m.frameLossRatio);
  });
}

async function runTest(ev) {
  ev.preventDefault();
  const service = $("#test-service").value;
  const type = $("#test-type").value;
  await act(() => call("POST", `${API.sft}/testJob`, {
    name: `${type} on ${service}`, requestedEndDateTime: "2100-01-01T00:00:00Z",
    testProfile: { "@type": "TestProfileValue" }, relatedServiceFrom: { id: service }, relatedServiceTo: { id: service },
    serviceSpecificTestJobConfiguration: { "@type": "urn:lso-interlude:sft:carrier-ethernet:test-job-configuration:v1",
      testType: type, frameCount: 50, intervalMs: 10 },
  }));
}

// Performance: a proactive job every second, its measurements streamed (NDJSON over fetch) into a chart ------

function pmValue(message) {
  for (const d of (message.event || {}).measurementData || []) {
    const fd = d.twoWayFrameDelay || d.oneWayFrameDelay;
    if (fd && typeof fd.mean === "number") return { value: fd.mean, unit: "ms two-way mean FD" };
    if (typeof d.utilizationIn === "number") return { value: d.utilizationIn, unit: "% utilization in" };
  }
  return null;
}

function drawChart(points, unit) {
  const w = 800, h = 300, pad = 40;
  const max = Math.max(1e-6, ...points.map((p) => p.value)) * 1.2;
  const step = (w - 2 * pad) / Math.max(1, points.length - 1);
  const coords = points.map((p, i) => `${pad + i * step},${h - pad - ((h - 2 * pad) * p.value) / max}`).join(" ");
  $("#pm-chart").replaceChildren(
    svg("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#999" }),
    svg("line", { x1: pad, y1: pad, x2: pad, y2: h - pad, stroke: "#999" }),
    svg("text", { x: pad, y: pad - 10 }, `${unit} (max ${max.toFixed(3)})`),
    svg("polyline", { points: coords, "data-points": String(points.length) }),
  );
}

async function startPm(ev) {
  ev.preventDefault();
  if (state.pm) state.pm.abort();
  const service = $("#pm-service").value;
  await act(async () => {
    const period = { timeDurationValue: 1, timeDurationUnits: "SEC" };
    const job = await call("POST", `${API.pm}/performanceJob`, {
      buyerJobId: `console-${service}`, monitoredObject: { "@type": "ServiceRef", serviceId: service },
      scheduleDefinition: {},
      performanceProfile: { "@type": "PerformanceProfileValue", jobType: "proactive", outputFormat: "json",
        resultFormat: "payload", granularity: period, reportingPeriod: period,
        serviceSpecificConfiguration: { "@type": "urn:lso-interlude:pm:carrier-ethernet:configuration:v1",
          tools: [{ tool: "DMM_DMR", framesPerInterval: 5, messagePeriodMs: 50 }] } },
    });
    const sub = await call("POST", `${API.streaming}/subscription`,
      { topicId: `performanceJob:${job.id}`, protocol: "http-stream" });
    $("#pm-info").textContent = `job ${job.id} on ${service}, subscription ${sub.id}`;
    streamPm(sub.id);
  });
}

async function streamPm(subscriptionId) {
  const controller = new AbortController();
  state.pm = controller;
  const points = [];
  let unit = "";
  const res = await fetch(`${API.streaming}/stream/${subscriptionId}`, { headers: headers(), signal: controller.signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        const point = pmValue(JSON.parse(line));
        if (!point) continue;
        unit = point.unit;
        points.push(point);
        if (points.length > 120) points.shift();
        $("#pm-points").textContent = String(Number($("#pm-points").textContent) + 1);
        $("#pm-last").textContent = `${point.value.toFixed(3)} ${unit}`;
        drawChart(points, unit);
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") say(String(err));
  }
}

// Plumbing ---------------------------------------------------------------------------------------------------

async function act(fn) {
  try { say(""); await fn(); await refresh(); } catch (err) { say(err.message); }
}

async function refresh() {
  // What the open view shows, plus the alarms (their count is on the tab): every request is in the access log.
  const jobs = [refreshAlarms()];
  if (state.view === "network") jobs.push(refreshNetwork());
  if (["services", "performance", "tests"].includes(state.view) || !state.listed) {
    state.listed = true;
    jobs.push(refreshServices());
  }
  if (state.view === "orders") jobs.push(refreshOrders());
  if (state.view === "tests") jobs.push(refreshTests());
  if (state.view === "services" && state.service) jobs.push(showService());
  await Promise.all(jobs);
}

async function loop() {
  try { await refresh(); } catch (err) { say(err.message); }
  setTimeout(loop, POLL_MS);
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.classList.toggle("active", s.id === `view-${view}`);
  refresh().catch((err) => say(err.message));
}

async function init() {
  for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => show(b.dataset.view);
  $("#fault-form").onsubmit = injectFault;
  $("#test-form").onsubmit = runTest;
  $("#pm-form").onsubmit = startPm;
  fillSelect("#scenario-name", Object.keys(SCENARIOS));
  $("#scenario-form").onsubmit = (ev) => { ev.preventDefault();
    act(() => call("POST", `${API.partner}/scenario`, SCENARIOS[$("#scenario-name").value])); };
  $("#scenario-stop").onclick = () => act(() => call("DELETE", `${API.partner}/scenario`));
  $("#buyer").onchange = () => { state.service = null; refresh().catch((err) => say(err.message)); };
  try {
    const topology = await call("GET", `${API.partner}/topology`);
    const buyers = [...new Set(topology.services.map((s) => s.buyer))].sort();
    for (const b of buyers) { const o = document.createElement("option"); o.value = o.textContent = b; $("#buyer").appendChild(o); }
  } catch (err) { say(err.message); }
  const wanted = new URLSearchParams(location.search);
  if (wanted.get("buyer")) $("#buyer").value = wanted.get("buyer");
  if (wanted.get("view")) show(wanted.get("view"));
  loop();
}

init();
