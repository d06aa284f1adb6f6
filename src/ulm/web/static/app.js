// ULM dashboard: buttons call the JSON API (with the session's CSRF token), charts use the
// vendored uPlot, and the live event stream (SSE) refreshes the page in place.
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
      const skip = b.dataset.all ? [] : [...document.querySelectorAll("input.approve")]
        .filter((c) => !c.checked).map((c) => Number(c.value));
      run(b, "POST", b.dataset.apply, {skip: skip});
    }
  });

  // Tables sort by a click on a column's heading (again: the other way round), numbers as
  // numbers ("87 %", "512 MiB", "0.40"); the plan's own list keeps its order (it is the order
  // the actions run in). Delegated: a table swapped in live sorts too.
  function key(cell) {
    const text = cell.textContent.trim();
    const n = parseFloat(text.replace(/[^0-9.eE+-]/g, ""));
    return /^[-+]?[0-9.]/.test(text) && !isNaN(n) ? n : text.toLowerCase();
  }
  document.addEventListener("click", (ev) => {
    const th = ev.target.closest("th");
    const table = th && th.closest("table");
    if (!table || table.id === "actions" || th.parentElement !== table.rows[0]) return;
    const col = [...th.parentElement.children].indexOf(th);
    const up = th.dataset.sorted !== "up";
    for (const other of th.parentElement.children) delete other.dataset.sorted;
    th.dataset.sorted = up ? "up" : "down";
    const rows = [...table.rows].slice(1);
    rows.sort((a, b) => {
      const x = a.cells[col] ? key(a.cells[col]) : "", y = b.cells[col] ? key(b.cells[col]) : "";
      const c = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
      return up ? c : -c;
    });
    const body = rows.length ? rows[0].parentElement : null;
    for (const r of rows) body.appendChild(r);
  });

  // a filter that applies itself (an inline onchange is refused by the page's CSP)
  document.addEventListener("change", (ev) => {
    if (ev.target.matches("select[data-submit]")) ev.target.form.submit();
  });

  document.addEventListener("submit", (ev) => {  // delegated: the form may be swapped in live
    const book = ev.target;
    if (book.id !== "book") return;
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

  function chart(el, title, xs, series, top, span) {
    el.replaceChildren();  // drawn again (another range): the old chart goes
    if (!window.uPlot || !xs.length) { el.textContent = "no samples yet"; return; }
    const x = span ? {time: true, range: () => span} : {time: true};  // the range asked for
    const opts = {
      title: title, width: el.clientWidth || 360, height: el.classList.contains("wide") ? 260 : 150,
      axes: [{stroke: colour("--fg"), grid: {stroke: colour("--grid")}},
             {stroke: colour("--fg"), grid: {stroke: colour("--grid")}}],
      // From zero, and CPU up to at least 100 %: a flat line must not look like a cliff.
      scales: {x: x, y: {range: (u, lo, hi) => [0, Math.max(hi * 1.05, top || 0) || 1]}},
      series: [{}].concat(series.map((s, i) => ({label: s.label, stroke: colour(i ? "--accent2" : "--accent"), width: 2}))),
      // what the chart shows, for whoever reads the page's markup (the browser tests)
      hooks: {ready: [(u) => { el.dataset.from = u.scales.x.min; el.dataset.to = u.scales.x.max; }]},
    };
    new window.uPlot(opts, [xs].concat(series.map((s) => s.values)), el);
  }

  async function charts() {
    for (const el of document.querySelectorAll(".chart[data-series]")) {
      const d = await api("GET", el.dataset.series).catch(() => null);
      const mem = el.dataset.figure === "mem";  // the same chart, of the memory in use
      if (d) chart(el, el.dataset.label, d.ts, [{label: mem ? "memory %" : "CPU %",
        values: (mem ? d.mem : d.cpu).map((c) => c * 100)}], 100, [d.since, d.until]);
    }
    for (const el of document.querySelectorAll(".chart[data-energy]")) {
      const d = await api("GET", el.dataset.energy).catch(() => null);
      if (d) chart(el, "kWh per hour", d.series.map((p) => p.ts), [
        {label: "used", values: d.series.map((p) => p.kwh)},
        {label: "always on", values: d.series.map((p) => p.always_on_kwh)}]);
    }
  }

  // -- live: the event stream refreshes the page in place -------------------------------------
  // Every daemon event (and what the API did) arrives on /api/v1/stream. The overview's list
  // shows each as it comes; then the page's <main> and the mode banner are fetched again and
  // swapped in (at most once a second), so cards, tables and charts follow the cluster without
  // a reload. A page where someone is typing or has ticked boxes is not swapped under them:
  // it says that news came instead.
  const KINDS = ((document.querySelector('meta[name="event-kinds"]') || {}).content || "")
    .split(" ").filter(Boolean);
  let timer = null;
  let busy = false;

  function line(kind, doc) {
    const text = (doc.data && doc.data.text) || kind + " " + JSON.stringify(doc.data || {});
    const li = document.createElement("li");
    li.textContent = "live · " + text;
    li.className = "fresh sev-" + ((doc.data && doc.data.severity) || "info");
    return li;
  }

  function dirty() {
    const main = document.querySelector("main");
    return !!(main && (main.dataset.touched || main.contains(document.activeElement) &&
                       document.activeElement.matches("input, select, textarea")));
  }

  async function refresh() {
    timer = null;
    if (busy) { timer = setTimeout(refresh, 1000); return; }
    if (dirty()) { flash("New events: reload the page to see them.", false); return; }
    busy = true;
    try {
      const resp = await fetch(window.location.href, {credentials: "same-origin"});
      if (!resp.ok || resp.redirected) return;  // logged out: the next click says so
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.querySelector("main");
      const main = document.querySelector("main");
      if (!fresh || !main || dirty()) return;
      const live = main.querySelector("#live");
      const flashEl = main.querySelector("#flash");
      main.replaceChildren(...fresh.childNodes);
      const slot = main.querySelector("#live");
      if (live && slot) slot.replaceWith(live);  // what arrived live stays in view
      const slotFlash = main.querySelector("#flash");
      if (flashEl && slotFlash) slotFlash.replaceWith(flashEl);
      const mode = doc.getElementById("mode");
      if (mode) document.getElementById("mode").replaceWith(mode);
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      charts();
    } catch (err) {
      // the daemon restarting: the stream reconnects and the next event tries again
    } finally {
      busy = false;
    }
  }

  function stream() {
    if (!window.EventSource || !document.querySelector("main")) return;
    const es = new EventSource("/api/v1/stream");
    es.onopen = () => { document.body.dataset.live = "1"; };  // connected: events arrive
    const show = (ev) => {
      let doc = {};
      try { doc = JSON.parse(ev.data); } catch (err) { doc = {}; }
      const live = document.getElementById("live");
      if (live) {
        live.prepend(line(ev.type, doc));
        while (live.children.length > 50) live.lastElementChild.remove();
      }
      if (!timer) timer = setTimeout(refresh, 1000);
    };
    for (const kind of KINDS) es.addEventListener(kind, show);
  }

  // a change someone makes on the page (a ticked box, a field) holds the live swap back
  for (const what of ["input", "change"]) {
    document.addEventListener(what, (ev) => {
      const main = ev.target.closest && ev.target.closest("main");
      if (main) main.dataset.touched = "1";
    });
  }

  // The Hosts page's range picker: every chart asks again from `-RANGE` (the server sends
  // at most 1,000 bucket means); the address keeps the range, so a live refresh keeps it too.
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("#range a[data-range]");
    if (!a) return;
    ev.preventDefault();
    const r = a.dataset.range;
    for (const other of document.querySelectorAll("#range a[data-range]")) {
      other.classList.toggle("on", other === a);
      if (other === a) other.setAttribute("aria-current", "true"); else other.removeAttribute("aria-current");
    }
    for (const el of document.querySelectorAll(".chart[data-series]")) {
      const u = new URL(el.dataset.series, window.location.href);
      u.searchParams.set("since", "-" + r);
      el.dataset.series = u.pathname + u.search;
    }
    const here = new URL(window.location.href);
    here.searchParams.set("range", r);
    history.replaceState(null, "", here.pathname + here.search);
    charts();
  });

  document.addEventListener("DOMContentLoaded", () => { charts(); stream(); });
})();
