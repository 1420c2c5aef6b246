// The fleet page: calls the token-protected JSON API; no data is embedded in the page itself.
"use strict";
const $ = (id) => document.getElementById(id);
const REFRESH_MS = 10000;
let token = sessionStorage.getItem("atsd-fleet-token") || "";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token }, opts.body ? { "Content-Type": "application/json" } : {});
  const resp = await fetch(path, Object.assign({}, opts, { headers }));
  const doc = await resp.json().catch(() => ({ error: resp.statusText }));
  if (resp.status === 401 || resp.status === 403) { showLogin(doc.error); throw new Error(doc.error); }
  if (!resp.ok) throw new Error(doc.error || resp.statusText);
  return doc;
}

function showLogin(msg) {
  $("login").hidden = false;
  if (msg && token) { $("login-error").textContent = msg; $("login-error").hidden = false; }
}

function groupQuery() {
  const g = $("group").value;
  return g ? "?tag=" + encodeURIComponent(g) : "";
}

function fmt(x, nd = 1) { return x === null || x === undefined ? "–" : Number(x).toFixed(nd); }

function age(s) {
  if (s === null || s === undefined) return "never";
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

async function refreshGroups() {
  const doc = await api("/api/groups");
  const sel = $("group"), cur = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const [tag, n] of Object.entries(doc.tags)) {
    const o = el("option", `${tag} (${n})`); o.value = tag; sel.add(o);
  }
  sel.value = cur;
}

async function refreshHouses() {
  const doc = await api("/api/houses" + groupQuery());
  $("counts").textContent = `${doc.available} of ${doc.count} available · saved today ${fmt(doc.today_savings_eur, 2)} €`;
  const body = $("houses").tBodies[0];
  body.replaceChildren();
  for (const h of doc.houses) {
    const tr = el("tr", null, h.available ? "" : "off");
    const failing = h.health && h.health.failing && h.health.failing.length ? h.health.failing.join(", ") : "ok";
    const cells = [h.device_id, h.available ? "online" : "unavailable", h.mode, fmt(h.indoor_c), fmt(h.outdoor_c),
      fmt(h.power_kw, 2), fmt(h.today_savings_eur, 2), failing, age(h.last_seen_age_s), h.tags.join(", ")];
    cells.forEach((c, i) => {
      const td = el("td", c ?? "–");
      if (i === 1) { td.className = h.available ? "ok" : "bad"; if (!h.available) td.title = h.unavailable_reason; }
      tr.append(td);
    });
    body.append(tr);
  }
}

async function refreshFlex() {
  const doc = await api("/api/flexibility" + groupQuery());
  const n = doc.now;
  const hold = n.hold_min ? `; envelopes hold ${fmt(n.hold_min.min, 0)}–${fmt(n.hold_min.max, 0)} min (median ${fmt(n.hold_min.median, 0)})` : "";
  const sus = doc.sustain.map((s) => `${fmt(s.shed_kw)} kW for ${s.minutes} min`).join(", ");
  $("flex-now").textContent = `Now: ${fmt(n.shed_kw)} kW (${fmt(n.from_flexibility_kw)} from ${n.houses_flexibility} envelopes, ` +
    `${fmt(n.estimated_kw)} estimated from ${n.houses_estimated} houses)${hold}. Sustained: ${sus}.` +
    (doc.unavailable.length ? ` ${doc.unavailable.length} unavailable.` : "");
  const body = $("flex-hours").tBodies[0];
  body.replaceChildren();
  for (const h of doc.hours) {
    const tr = el("tr");
    [h.start.slice(11, 16), fmt(h.shed_kw), fmt(h.from_flexibility_kw), fmt(h.estimated_kw)].forEach((c) => tr.append(el("td", c)));
    body.append(tr);
  }
}

async function refreshDispatches() {
  const doc = await api("/api/dispatch");
  const box = $("dispatches");
  box.replaceChildren();
  for (const d of doc.dispatches.slice(0, 10)) {
    const s = d.summary;
    const p = el("p", null, "summary");
    p.append(el("strong", `${d.event.event_id} (${d.event.kind}, ${d.event.duration_min} min) `));
    for (const k of ["accepted", "partial", "refused", "missing", "pending"]) p.append(el("span", `${k} ${s[k]}`));
    p.append(el("span", `shed measured ${fmt(d.shed.measured_kw, 2)} kW of ${fmt(d.shed.promised_kw, 2)} promised`));
    box.append(p);
  }
}

async function refresh() {
  if (!token) { showLogin(); return; }
  try {
    await refreshGroups();
    await Promise.all([refreshHouses(), refreshFlex(), refreshDispatches()]);
    $("login").hidden = true;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("updated").textContent = "not updated: " + e.message;
  }
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("atsd-fleet-token", token);
  refresh();
});

$("group").addEventListener("change", refresh);

$("dispatch-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const g = $("group").value;
  if (!g) { $("dispatch-error").textContent = "choose a group (tag) first"; $("dispatch-error").hidden = false; return; }
  try {
    await api("/api/dispatch", { method: "POST",
      body: JSON.stringify({ tag: g, kind: $("kind").value, duration_min: Number($("duration").value) }) });
    $("dispatch-error").hidden = true;
    refresh();
  } catch (e) {
    $("dispatch-error").textContent = e.message; $("dispatch-error").hidden = false;
  }
});

refresh();
setInterval(refresh, REFRESH_MS);
