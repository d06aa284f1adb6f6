// ULM dashboard: buttons call the JSON API (with the session's CSRF token), charts use the
// vendored uPlot, and the live event stream (SSE) feeds the overview's event list.
"use strict";
(function () {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function flash(text, bad) {
    const el = document.getElementById("flash");
    if (!el) return;
    el.textContent = text;
    el.className = bad ? "flash bad" : "flash";
    el.hidden = false;
  }

  async function api(method, url, body) {
    const resp = await fetch(url, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({error: resp.statusText}));
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  }

  function said(data) {
    if (data.message) return data.message;
    if (data.outcomes) return "plan " + data.status + ": " +
      data.outcomes.map((o) => "#" + o.seq + " " + o.status + (o.detail ? " (" + o.detail + ")" : "")).join("; ");
    if (data.detail !== undefined) return "#" + data.id + " " + data.status + ": " + data.detail;
    if (data.plan_id !== undefined) return data.plan_id ? "new plan " + data.plan_id : "nothing to do";
    return "done";
  }

  async function run(button, method, url, body) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      flash(said(await api(method, url, body)), false);
      setTimeout(() => window.location.reload(), 800);
    } catch (err) {
      flash(err.message, true);
      button.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.post) {
      ev.preventDefault();
      run(b, "POST", b.dataset.post, b.dataset.body ? JSON.parse(b.dataset.body) : {});
    } else if (b.dataset.delete) {
      ev.preventDefault();
      run(b, "DELETE", b.dataset.delete);
    } else if (b.dataset.apply) {
      ev.preventDefault();
      const skip = [...document.querySelectorAll("input.approve")]
        .filter((c) => !c.checked).map((c) => Number(c.value));
      run(b, "POST", b.dataset.apply, {skip: skip});
    }
  });

  const book = document.getElementById("book");
  if (book) book.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(book);
    const epoch = (v) => new Date(v).getTime() / 1000;  // datetime-local is the browser's time
    run(book.querySelector("button"), "POST", "/api/v1/maintenance", {
      host: f.get("host"), start: epoch(f.get("start")), end: epoch(f.get("end")),
      power_off: f.get("power_off") === "on", return_home: f.get("return_home") === "on",
      reason: f.get("reason") || "",
    });
  });

  function colour(name) {
    return getComputedStyle(document.body).getPropertyValue(name).trim() || "#888";
  }

  function chart(el, title, xs, series, top) {
    if (!window.uPlot || !xs.length) { el.textContent = "no samples yet"; return; }
    const opts = {
      title: title, width: el.clientWidth || 360, height: el.classList.contains("wide") ? 260 : 150,
      axes: [{stroke: colour("--fg"), grid: {stroke: colour("--grid")}},
             {stroke: colour("--fg"), grid: {stroke: colour("--grid")}}],
      // From zero, and CPU up to at least 100 %: a flat line must not look like a cliff.
      scales: {y: {range: (u, lo, hi) => [0, Math.max(hi * 1.05, top || 0) || 1]}},
      series: [{}].concat(series.map((s, i) => ({label: s.label, stroke: colour(i ? "--accent2" : "--accent"), width: 2}))),
    };
    new window.uPlot(opts, [xs].concat(series.map((s) => s.values)), el);
  }

  async function charts() {
    for (const el of document.querySelectorAll(".chart[data-series]")) {
      const d = await api("GET", el.dataset.series).catch(() => null);
      if (d) chart(el, el.dataset.label, d.ts, [{label: "CPU %", values: d.cpu.map((c) => c * 100)}], 100);
    }
    for (const el of document.querySelectorAll(".chart[data-energy]")) {
      const d = await api("GET", el.dataset.energy).catch(() => null);
      if (d) chart(el, "kWh per hour", d.series.map((p) => p.ts), [
        {label: "used", values: d.series.map((p) => p.kwh)},
        {label: "always on", values: d.series.map((p) => p.always_on_kwh)}]);
    }
  }

  function stream() {
    const live = document.getElementById("live");
    if (!live || !window.EventSource) return;
    const es = new EventSource("/api/v1/stream");
    es.onopen = () => { document.body.dataset.live = "1"; };  // connected: events arrive
    const show = (ev) => {
      const li = document.createElement("li");
      li.textContent = "live · " + ev.type + ": " + ev.data;
      li.className = "fresh";
      live.prepend(li);
      if (ev.type === "mode") setTimeout(() => window.location.reload(), 500);
    };
    for (const kind of ["round", "plan", "plan.applied", "plan.rejected", "mode", "outcome",
                        "maintenance.booked", "maintenance.cancelled", "maintenance.undrained"]) {
      es.addEventListener(kind, show);
    }
  }

  document.addEventListener("DOMContentLoaded", () => { charts(); stream(); });
})();
