// atsd status page: renders /api/chart (inlined on first load) and refreshes itself. No libraries.
"use strict";
(function () {
  const SVGNS = "http://www.w3.org/2000/svg";
  const REFRESH_S = Number(document.body.dataset.refreshS) || 60;
  const TOKEN_KEY = "atsd-token";
  let tz;
  let lastData = null;
  let lastOk = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function sv(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function fmt(iso, opts) {
    if (!iso) return "";
    const o = Object.assign({ hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: tz }, opts || {});
    try {
      return new Intl.DateTimeFormat("en-GB", o).format(new Date(iso));
    } catch (e) {
      delete o.timeZone;
      return new Intl.DateTimeFormat("en-GB", o).format(new Date(iso));
    }
  }
  // The weekday only when the time is not on the day the page shows ("now" of the last data).
  const dayKey = (iso) => fmt(iso, { year: "numeric", month: "2-digit", day: "2-digit", hour: undefined, minute: undefined });
  const fmtDay = (iso) => (lastData && dayKey(iso) === dayKey(lastData.status.now) ? fmt(iso) : fmt(iso, { weekday: "short" }));
  // Reasons start with the mode ("OFF: 27 c/kWh ..."); next to a mode badge the prefix is noise.
  const plainReason = (text) => {
    const t = (text || "").replace(/^(OFF|ECO|NORMAL|BOOST):\s*/, "");
    return t.charAt(0).toUpperCase() + t.slice(1);
  };
  const temp = (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + " °C");
  const eur = (v) => (v === null || v === undefined ? "–" : (v < 0 ? "−" : "") + "€" + Math.abs(v).toFixed(2));

  function localHour(ms) {
    const parts = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", hourCycle: "h23", timeZone: tz }).formatToParts(new Date(ms));
    for (const p of parts) if (p.type === "hour") return Number(p.value);
    return new Date(ms).getUTCHours();
  }

  function setMode(node, mode) {
    node.textContent = mode || "–";
    node.className = node.className.replace(/\bm-\w+/g, "").trim() + " m-" + mode;
  }

  // ---------------------------------------------------------------------------------------------
  function render(data) {
    lastData = data;
    const st = data.status;
    tz = st.device.timezone;
    setMode($("mode"), st.mode);
    $("mode").dataset.mode = st.mode;
    $("mode-since").textContent = st.mode_since ? "since " + fmtDay(st.mode_since) + (st.by && st.by !== "plan" ? " · " + st.by : "") : "";
    $("reason").textContent = plainReason(st.reason);
    const nxt = st.plan && st.plan.next_changes && st.plan.next_changes[0];
    $("next").textContent = nxt ? "Next: " + nxt.mode + " at " + fmtDay(nxt.start) + ": " + plainReason(nxt.reason) : "";
    $("indoor").textContent = temp(st.indoor_c);
    $("outdoor").textContent = temp(st.outdoor_c);
    const cf = st.device.comfort;
    $("comfort").textContent = "comfort " + cf.min_c + "–" + cf.max_c + " °C";
    $("cost").textContent = eur(st.today.cost_eur);
    $("energy").textContent = st.today.energy_kwh.toFixed(1) + " kWh";
    $("saved").textContent = eur(st.today.savings_eur);
    renderAlerts(st);
    renderSavings(st);
    renderDecisions(st.decisions || []);
    renderSources(st.sources || []);
    drawChart(data.chart);
    lastOk = new Date();
    $("updated").textContent = "updated " + fmt(st.now) + (st.clock_ok === false ? " · clock not synchronised: running NORMAL" : "");
  }

  function renderAlerts(st) {
    const box = $("alerts");
    box.replaceChildren();
    const items = (st.alerts || []).slice();
    if (st.override) items.unshift({ level: "info", message: "Manual override: " + st.override.mode + " until " + fmtDay(st.override.until) });
    if (st.demand_response) {
      const d = st.demand_response;
      items.unshift({ level: "info", message: "Demand response (" + d.kind + ", " + d.status + "): " + fmtDay(d.start) + "–" + fmt(d.end) });
    }
    for (const a of items) {
      const c = el("section", "card alert " + a.level);
      c.appendChild(el("strong", null, a.level === "info" ? "Note" : a.level === "critical" ? "Alarm" : "Warning"));
      c.appendChild(document.createTextNode(" " + a.message));
      box.appendChild(c);
    }
  }

  function renderSavings(st) {
    const dl = $("savings");
    dl.replaceChildren();
    const m = st.savings.model;
    dl.appendChild(el("dt", null, "Model estimate"));
    dl.appendChild(el("dd", null, "Today so far " + eur(m.today_eur) + "; this plan " + eur(m.plan_eur) + "."));
    dl.appendChild(el("dd", "muted", m.label));
    const me = st.savings.measured;
    dl.appendChild(el("dt", null, "Measured"));
    let text;
    if (me.savings_eur !== null && me.savings_eur !== undefined && (me.days_needed === null || me.days >= me.days_needed)) {
      text = eur(me.savings_eur) + " over " + me.days.toFixed(0) + " days; energy predicted " +
        (me.predicted_energy_kwh ?? 0).toFixed(0) + " kWh, measured " + (me.measured_energy_kwh ?? 0).toFixed(0) +
        " kWh; mean indoor predicted " + temp(me.predicted_mean_temp_c) + ", measured " + temp(me.measured_mean_temp_c) + ".";
    } else if (me.days_needed) {
      text = "Not enough history yet: " + me.days.toFixed(1) + " of " + me.days_needed + " days.";
    } else {
      text = "Not available.";
    }
    dl.appendChild(el("dd", null, text));
    dl.appendChild(el("dd", "muted", me.label + (me.note ? " · " + me.note : "")));
  }

  function renderDecisions(rows) {
    const ol = $("decisions");
    ol.replaceChildren();
    if (!rows.length) ol.appendChild(el("li", "muted", "No decisions yet."));
    for (const d of rows.slice(0, 12)) {
      const li = el("li");
      li.appendChild(el("time", null, fmtDay(d.at)));
      li.appendChild(el("span", "tag m-" + d.mode, d.mode));
      li.appendChild(el("span", null, plainReason(d.reason) + (d.by && d.by !== "plan" ? " (" + d.by + ")" : "")));
      ol.appendChild(li);
    }
  }

  function renderSources(rows) {
    const ul = $("sources");
    ul.replaceChildren();
    for (const s of rows) {
      const li = el("li");
      li.appendChild(el("span", "dot " + (s.ok ? (s.fallback ? "fallback" : "ok") : s.fallback ? "fallback" : "down")));
      li.appendChild(el("strong", null, s.name));
      const when = s.last_success ? "last success " + fmtDay(s.last_success) : "no success yet";
      li.appendChild(el("span", "muted", when + (s.fallback ? " · fallback in use" : "") + (s.message ? " · " + s.message : "")));
      ul.appendChild(li);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The chart: price bars, the mode band, and indoor temperature with the comfort band.
  // Drawn in CSS pixels of the box it sits in, so text keeps its size on a phone.
  const P0 = 10, P1 = 86; // price panel
  const B0 = 94, B1 = 112; // mode band
  const T0 = 122, T1 = 292; // temperature panel
  const H = 326;

  function drawChart(c) {
    const svg = $("chart");
    svg.replaceChildren();
    const W = Math.max(300, Math.round($("chart-box").clientWidth || 720));
    const L = 34, R = W - 6;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    const t0 = Date.parse(c.from), t1 = Date.parse(c.to), now = Date.parse(c.now);
    const step = c.slot_minutes * 60000;
    const X = (t) => L + ((t - t0) / (t1 - t0)) * (R - L);
    // Bars and the mode band: what happened up to the current slot, the plan from it on.
    const fut = c.future.filter((r) => Date.parse(r.t) >= t0);
    const ahead = fut.filter((r) => Date.parse(r.t) + step > now);
    const aheadStart = ahead.length ? Date.parse(ahead[0].t) : now;
    const past = c.past.filter((r) => Date.parse(r.t) >= t0 && Date.parse(r.t) < aheadStart);
    const slots = past.map((r) => ({ t: Date.parse(r.t), mode: r.mode, price: r.price, past: true }))
      .concat(ahead.map((r) => ({ t: Date.parse(r.t), mode: r.mode, price: r.price, est: r.est, past: false })));
    svg.dataset.slots = String(slots.length);

    // price panel
    const prices = slots.map((s) => s.price).filter((p) => p !== null && p !== undefined);
    const pMax = Math.max(0.05, ...prices), pMin = Math.min(0, ...prices);
    const PY = (p) => P1 - ((p - pMin) / (pMax - pMin)) * (P1 - P0);
    sv("line", { x1: L, x2: R, y1: PY(0), y2: PY(0), class: "grid" }, svg);
    sv("text", { x: 2, y: P0 + 8 }, svg).textContent = (pMax * 100).toFixed(0) + " c";
    sv("text", { x: 2, y: P1 }, svg).textContent = (pMin * 100).toFixed(0) + " c";
    const gp = sv("g", { class: "prices" }, svg);
    for (const s of slots) {
      if (s.price === null || s.price === undefined) continue;
      const x = X(s.t), w = Math.max(0.5, X(s.t + step) - x - 0.4);
      const y = Math.min(PY(s.price), PY(0)), h = Math.max(0.5, Math.abs(PY(s.price) - PY(0)));
      sv("rect", { x: x.toFixed(1), y: y.toFixed(1), width: w.toFixed(1), height: h.toFixed(1),
        class: "price" + (s.est ? " est" : "") + (s.past ? " past" : "") }, gp);
    }
    // mode band: runs of the same mode as one rect each
    const gm = sv("g", { class: "modes" }, svg);
    for (let i = 0; i < slots.length;) {
      let j = i;
      while (j + 1 < slots.length && slots[j + 1].mode === slots[i].mode && slots[j + 1].past === slots[i].past &&
             slots[j + 1].t === slots[j].t + step) j++;
      const x = X(slots[i].t), x2 = X(slots[j].t + step);
      const r = sv("rect", { x: x.toFixed(1), y: B0, width: Math.max(0.5, x2 - x).toFixed(1), height: B1 - B0,
        class: "mode-band m-" + slots[i].mode + (slots[i].past ? " past" : "") }, gm);
      sv("title", {}, r).textContent = slots[i].mode;
      if (x2 - x > 44) {
        sv("text", { x: (x + 4).toFixed(1), y: B1 - 5, class: "mode-label" }, gm).textContent = slots[i].mode;
      }
      i = j + 1;
    }
    // temperature panel
    const temps = [c.comfort.min_c, c.comfort.max_c];
    for (const r of fut) { if (r.temp !== null) temps.push(r.temp); if (r.start_temp !== null) temps.push(r.start_temp); }
    for (const r of past) if (r.temp !== null && r.temp !== undefined) temps.push(r.temp);
    const lo = Math.floor(Math.min(...temps) - 0.3), hi = Math.ceil(Math.max(...temps) + 0.3);
    const TY = (v) => T1 - ((v - lo) / (hi - lo)) * (T1 - T0);
    const stepDeg = hi - lo > 6 ? 2 : 1;
    for (let v = lo; v <= hi; v += stepDeg) {
      sv("line", { x1: L, x2: R, y1: TY(v), y2: TY(v), class: "grid" }, svg);
      sv("text", { x: 2, y: TY(v) + 4 }, svg).textContent = v + "°";
    }
    // comfort band: flat over the past, per slot over the plan (night setbacks)
    const up = [], down = [];
    const bandPts = [{ t: t0, min: c.comfort.min_c, max: c.comfort.max_c }]
      .concat(fut.map((r) => ({ t: Date.parse(r.t), min: r.min, max: r.max })));
    const bandEnd = fut.length ? Date.parse(fut[fut.length - 1].t) + step : t1;
    bandPts.forEach((b, i) => {
      const tEnd = i + 1 < bandPts.length ? bandPts[i + 1].t : bandEnd;
      up.push(X(b.t).toFixed(1) + "," + TY(b.max).toFixed(1), X(tEnd).toFixed(1) + "," + TY(b.max).toFixed(1));
      down.unshift(X(tEnd).toFixed(1) + "," + TY(b.min).toFixed(1), X(b.t).toFixed(1) + "," + TY(b.min).toFixed(1));
    });
    sv("polygon", { points: up.concat(down).join(" "), class: "band" }, svg);
    // predicted (plan) and measured (history)
    if (fut.length) {
      const pts = fut.map((r) => X(Date.parse(r.t)).toFixed(1) + "," + TY(r.start_temp).toFixed(1));
      const last = fut[fut.length - 1];
      pts.push(X(Date.parse(last.t) + step).toFixed(1) + "," + TY(last.temp).toFixed(1));
      sv("path", { d: "M" + pts.join("L"), class: "pred" }, svg);
    }
    const meas = past.filter((r) => r.temp !== null && r.temp !== undefined);
    if (meas.length) {
      const pts = meas.map((r) => X(Date.parse(r.t)).toFixed(1) + "," + TY(r.temp).toFixed(1));
      sv("path", { d: "M" + pts.join("L"), class: "meas" }, svg);
    }
    // time axis in local time: a tick every 6 hours, the weekday at midnight
    for (let t = Math.ceil(t0 / 3600000) * 3600000; t <= t1; t += 3600000) {
      const h = localHour(t);
      if (h % 6 !== 0) continue;
      sv("line", { x1: X(t), x2: X(t), y1: P0, y2: T1, class: "grid" }, svg);
      sv("text", { x: X(t) - 10, y: T1 + 16 }, svg).textContent = h === 0 ? fmt(new Date(t).toISOString(), { weekday: "short", hour: undefined, minute: undefined }) : String(h).padStart(2, "0");
    }
    if (now >= t0 && now <= t1) {
      sv("line", { x1: X(now), x2: X(now), y1: P0 - 4, y2: T1 + 4, class: "now" }, svg);
      sv("text", { x: X(now) + 3, y: T1 + 28 }, svg).textContent = "now";
    }
    const byT = new Map(past.map((r) => [Date.parse(r.t), r]));
    for (const r of ahead) byT.set(Date.parse(r.t), r);
    svg.onpointermove = svg.onpointerdown = (ev) => {
      const box = svg.getBoundingClientRect();
      const t = t0 + ((ev.clientX - box.left) * (W / box.width) - L) / (R - L) * (t1 - t0);
      const key = Math.floor((t - t0) / step) * step + t0;
      const r = byT.get(key);
      if (!r) return;
      const iso = new Date(key).toISOString();
      const price = r.price === null || r.price === undefined ? "–" : (r.price * 100).toFixed(1) + " c/kWh";
      const kind = key < now ? "measured " : "predicted ";
      $("chart-info").textContent = fmt(iso, { weekday: "short" }) + " · " + (r.mode || "–") + " · " + price + " · " + kind + temp(r.temp);
    };
    svg.setAttribute("aria-label", "Chart: " + slots.length + " slots of price and mode, indoor temperature " +
      lo + "–" + hi + " °C");
  }

  // ---------------------------------------------------------------------------------------------
  function showLogin(message) {
    $("login").hidden = false;
    const e = $("login-error");
    e.hidden = !message;
    e.textContent = message || "";
  }

  async function refresh() {
    const headers = {};
    const tok = localStorage.getItem(TOKEN_KEY);
    if (tok) headers.Authorization = "Bearer " + tok;
    try {
      const r = await fetch("/api/chart", { headers: headers, cache: "no-store" });
      if (r.status === 401 || r.status === 403) {
        showLogin(tok ? "That token was not accepted." : "");
        return;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      $("login").hidden = true;
      render(await r.json());
    } catch (e) {
      const since = lastOk ? " since " + lastOk.toLocaleTimeString() : "";
      $("updated").textContent = "atsd not reachable" + since + "; showing the last data";
    }
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    refresh();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (lastData) drawChart(lastData.chart); }, 150);
  });

  const initial = JSON.parse($("initial").textContent);
  if (initial.data) render(initial.data);
  else if (initial.private && !localStorage.getItem(TOKEN_KEY)) showLogin("");
  else refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_S * 1000);
  window.atsdLast = () => lastData;
})();
