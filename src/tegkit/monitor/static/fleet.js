// tegkit fleet page: one row per gateway from GET api/fleet (one request), sortable by any
// column, filtered by text and by status, refreshed every few seconds without losing either.
// Only the rows in view (and a margin) are in the document: laying out a thousand table rows
// takes the browser most of a second, a screenful a few milliseconds; spacer rows keep the
// scroll bar true. Every value from the monitor is escaped before it reaches the page (names
// and labels come from a fleet file: they are text, never markup). No framework, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000;
const ROW_H = 32; // px: every row's height (fleet.css: .fleet-table tbody tr.r)
const MARGIN_ROWS = 20; // rows drawn above and below the view
// worst first: the order of the status chips and of an ascending sort by status
const SEVERITY = ["unauthorized", "stopped", "unreachable", "stale", "ok"];

const fleet = {
  doc: null, // the latest api/fleet answer
  rows: [], // one object per gateway
  visible: [], // the rows that pass the filters, in order (those in view are drawn)
  window: [0, 0], // the first and after-last index of `visible` drawn
  labelNames: [],
  power: [], // api/fleet's power columns: {column, meter, heading, positive}
  statuses: [],
  grid: null, // grid status value -> {label, off_grid} (api/vocabulary); null if unknown
  sort: { key: "status", dir: "asc" },
  q: "", // the filter text, lower case
  hidden: new Set(), // statuses switched off
  receivedAt: 0,
  renders: 0,
  refreshes: 0,
  renderMs: null, // the last render: rows filtered, sorted, written and laid out
  loadMs: null, // page start to the first rows laid out
  busy: false,
};
window.fleet = fleet; // for tests and the curious

// ---- text -------------------------------------------------------------------------------

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function esc(v) {
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]);
}
function kw(w) {
  if (w === null || w === undefined) return "–";
  const v = w / 1000;
  return Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1);
}
function age(s) {
  if (s === null || s === undefined) return "never";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return Math.round(s / 86400) + " d";
}
function gridLabel(value) {
  if (value === null || value === undefined) return "–";
  const known = fleet.grid && fleet.grid.get(value);
  return known ? known.label : value;
}
function gridClass(value) {
  const known = fleet.grid && fleet.grid.get(value);
  if (!known) return "neutral";
  return known.off_grid === true ? "off-grid" : known.off_grid === false ? "on-grid" : "neutral";
}

// ---- columns ----------------------------------------------------------------------------

// key: a column of api/fleet (or "label:NAME"); kind: how it sorts and shows
function columns() {
  return [
    { key: "gateway", label: "Gateway", kind: "text" },
    { key: "status", label: "Status", kind: "status" },
    { key: "reason", label: "Reason", kind: "text" },
    { key: "soe_app_percent", label: "Charge %", kind: "num" },
    // the meters and their signs are the monitor's (api/fleet "power"), never spelled here
    ...fleet.power.map((p) => ({ key: p.column, label: p.heading + " kW", kind: "num", title: "> 0 " + p.positive })),
    { key: "grid_status", label: "Grid", kind: "grid" },
    { key: "age_s", label: "Last reading", kind: "num", title: "time since the latest reading" },
    { key: "alerts", label: "Alerts", kind: "num", title: "open alerts" },
    ...fleet.labelNames.map((name, i) => ({ key: "label:" + name, label: name, kind: "text", label_i: i })),
  ];
}

function renderHead() {
  const cols = columns();
  fleet.cols = cols;
  $("fleet").style.minWidth = (78 + 8 * fleet.labelNames.length) + "em"; // then it scrolls
  $("head").innerHTML = cols.map((c) => {
    const on = fleet.sort.key === c.key;
    const aria = on ? (fleet.sort.dir === "asc" ? "ascending" : "descending") : "none";
    const title = c.title ? ' title="' + esc(c.title) + '"' : "";
    const cls = ' class="c-' + (c.label_i !== undefined ? "label" : c.key) +
      (c.kind === "num" ? " num" : "") + '"';
    return "<th" + cls + ' aria-sort="' + aria + '"' + title + '><button type="button" data-key="' +
      esc(c.key) + '">' + esc(c.label) + '<span class="arrow" aria-hidden="true">' +
      (on ? (fleet.sort.dir === "asc" ? "▲" : "▼") : "") + "</span></button></th>";
  }).join("");
}

// ---- rows -------------------------------------------------------------------------------

function toRows(doc) {
  return doc.rows.map((r) => {
    const row = {};
    doc.columns.forEach((name, i) => { row[name] = r[i]; });
    row.labels = row.labels || [];
    row.age_s = row.taken_at === null ? null : Math.max(0, doc.now - row.taken_at);
    row.href = "./?gateway=" + encodeURIComponent(row.gateway);
    row.search = [row.gateway, row.status, row.reason || "", ...row.labels].join("\n").toLowerCase();
    return row;
  });
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function sortKey(col) {
  if (col.label_i !== undefined) return (r) => r.labels[col.label_i] || null;
  if (col.kind === "status") return (r) => { const i = SEVERITY.indexOf(r.status); return i < 0 ? -1 : i; };
  if (col.kind === "grid") return (r) => (r.grid_status === null ? null : gridLabel(r.grid_status));
  return (r) => (r[col.key] === undefined ? null : r[col.key]);
}

function sorted(rows) {
  const col = fleet.cols.find((c) => c.key === fleet.sort.key) || fleet.cols[0];
  const key = sortKey(col);
  const sign = fleet.sort.dir === "asc" ? 1 : -1;
  const text = col.kind === "text" || col.kind === "grid";
  const keyed = rows.map((r) => [key(r), r]);
  keyed.sort((a, b) => {
    const x = a[0], y = b[0];
    if (x !== y) {
      if (x === null) return 1; // a missing value sorts last either way
      if (y === null) return -1;
      const c = text ? collator.compare(x, y) : x - y;
      if (c !== 0) return sign * c;
    }
    return collator.compare(a[1].gateway, b[1].gateway);
  });
  return keyed.map((k) => k[1]);
}

function rowHtml(r, i) {
  const st = SEVERITY.includes(r.status) ? r.status : "other";
  const reason = r.reason ? esc(r.reason) : "";
  let h = '<tr data-i="' + i + '" class="r st-' + st + '"><td class="name"><a href="' +
    esc(r.href) + '">' + esc(r.gateway) + '</a></td><td><span class="st">' + esc(r.status) +
    '</span></td><td class="reason" title="' + reason + '">' + reason + '</td><td class="num">' +
    (r.soe_app_percent === null ? "–" : r.soe_app_percent.toFixed(0)) + "</td>";
  for (const p of fleet.power) h += '<td class="num">' + kw(r[p.column]) + "</td>";
  h += '<td><span class="grid ' + gridClass(r.grid_status) + '">' + esc(gridLabel(r.grid_status)) +
    '</span></td><td class="num">' + age(r.age_s) + '</td><td class="num' +
    (r.alerts > 0 ? " alerting" : "") + '">' + esc(r.alerts) + "</td>";
  for (const v of r.labels) h += '<td title="' + esc(v) + '">' + esc(v) + "</td>";
  return h + "</tr>";
}

function render() {
  const t0 = performance.now();
  const counts = Object.fromEntries(fleet.statuses.map((s) => [s, 0]));
  const shown = [];
  for (const r of fleet.rows) {
    if (fleet.q && !r.search.includes(fleet.q)) continue;
    counts[r.status] = (counts[r.status] || 0) + 1;
    if (!fleet.hidden.has(r.status)) shown.push(r);
  }
  const visible = sorted(shown);
  fleet.visible = visible;
  draw(true);
  renderChips(counts);
  $("count").textContent = visible.length + " of " + fleet.rows.length + " gateways";
  $("empty").hidden = visible.length > 0;
  $("empty").textContent = fleet.rows.length ? "No gateway matches." : "No gateway is watched.";
  void $("rows").offsetHeight; // lay it out now: the time measured is the time it takes
  fleet.renderMs = performance.now() - t0;
  fleet.renders += 1;
  document.body.dataset.renders = String(fleet.renders);
}

// The rows in view and MARGIN_ROWS around them; `force` redraws even if the window is the same.
function draw(force) {
  const wrap = $("wrap");
  const n = fleet.visible.length;
  const top = Math.max(0, wrap.scrollTop - $("head").offsetHeight);
  const inView = Math.ceil(wrap.clientHeight / ROW_H);
  // scrolled past the end of fewer rows than before: the last ones, until the box follows
  const first = Math.max(0, Math.min(Math.floor(top / ROW_H), n - inView) - MARGIN_ROWS);
  const last = Math.min(n, first + inView + 2 * MARGIN_ROWS);
  if (!force && first === fleet.window[0] && last === fleet.window[1]) return;
  fleet.window = [first, last];
  const span = fleet.cols.length;
  const pad = (rows) => (rows > 0 ? '<tr class="pad" aria-hidden="true"><td colspan="' + span +
    '" style="height:' + rows * ROW_H + 'px"></td></tr>' : "");
  const html = [pad(first)];
  for (let i = first; i < last; i++) html.push(rowHtml(fleet.visible[i], i));
  html.push(pad(n - last));
  $("rows").innerHTML = html.join("");
}

function renderChips(counts) {
  $("chips").innerHTML = fleet.statuses.map((s) => {
    const st = SEVERITY.includes(s) ? s : "other";
    const on = !fleet.hidden.has(s);
    return '<button type="button" class="chip st-' + st + (on ? " on" : "") + '" data-status="' +
      esc(s) + '" aria-pressed="' + on + '">' + esc(s) + ' <span class="n">' + esc(counts[s] || 0) +
      "</span></button>";
  }).join("");
}

// ---- state in the address (a reload or the back button keeps the view) -------------------

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("sort")) fleet.sort = { key: p.get("sort"), dir: p.get("dir") === "desc" ? "desc" : "asc" };
  fleet.q = (p.get("q") || "").toLowerCase();
  $("filter").value = p.get("q") || "";
  fleet.hidden = new Set((p.get("hide") || "").split(",").filter(Boolean));
}
function writeHash() {
  const p = new URLSearchParams();
  p.set("sort", fleet.sort.key);
  p.set("dir", fleet.sort.dir);
  if ($("filter").value) p.set("q", $("filter").value);
  if (fleet.hidden.size) p.set("hide", [...fleet.hidden].join(","));
  history.replaceState(null, "", "#" + p.toString());
}

// ---- data -------------------------------------------------------------------------------

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

async function loadVocabulary() {
  try {
    const v = await getJSON("api/vocabulary");
    fleet.grid = new Map(v.grid_statuses.map((s) => [s.value, s]));
  } catch (e) {
    fleet.grid = null; // raw values are shown: still true, just less friendly
  }
}

function refresh(pending) {
  if (!fleet.busy) fleet.inflight = load(pending);
  return fleet.inflight;
}

async function load(pending) {
  fleet.busy = true;
  try {
    const doc = await (pending || getJSON("api/fleet"));
    const head = JSON.stringify([doc.label_names, doc.power]);
    const headChanged = head !== JSON.stringify([fleet.labelNames, fleet.power]);
    fleet.doc = doc;
    fleet.labelNames = doc.label_names;
    fleet.power = doc.power;
    fleet.statuses = [...SEVERITY.filter((s) => doc.statuses.includes(s)),
      ...doc.statuses.filter((s) => !SEVERITY.includes(s))];
    fleet.rows = toRows(doc);
    fleet.receivedAt = Date.now();
    if (headChanged || !fleet.cols) renderHead();
    render();
    fleet.refreshes += 1;
    $("banner").hidden = true;
    $("fresh-dot").className = "dot ok";
    $("fresh-text").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("banner").hidden = false;
    $("banner-title").textContent = "Cannot refresh.";
    $("banner-text").textContent = String(e.message || e) + " (the rows shown are from the last refresh)";
    $("fresh-dot").className = "dot bad";
  } finally {
    fleet.busy = false;
  }
}
// a refresh now, after the one under way if any (tests call it instead of waiting)
fleet.refresh = async () => {
  while (fleet.busy) await fleet.inflight;
  return refresh();
};

// ---- start ------------------------------------------------------------------------------

async function start() {
  readHash();
  const rows = getJSON("api/fleet");
  rows.catch(() => {}); // its failure is refresh's to show
  await loadVocabulary(); // first: the grid statuses are shown in the monitor's words
  await refresh(rows);
  fleet.loadMs = performance.now();
  document.body.dataset.ready = "1"; // tests wait for this
  $("head").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-key]");
    if (!b) return;
    const key = b.dataset.key;
    fleet.sort = { key, dir: fleet.sort.key === key && fleet.sort.dir === "asc" ? "desc" : "asc" };
    renderHead();
    $("wrap").scrollTop = 0; // a new order is read from its top
    render();
    writeHash();
  });
  $("chips").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-status]");
    if (!b) return;
    const s = b.dataset.status;
    if (fleet.hidden.has(s)) fleet.hidden.delete(s); else fleet.hidden.add(s);
    $("wrap").scrollTop = 0;
    render();
    writeHash();
  });
  let drawing = false; // one redraw per frame however fast the wheel turns
  const redraw = () => {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => { drawing = false; draw(false); });
  };
  $("wrap").addEventListener("scroll", redraw, { passive: true });
  window.addEventListener("resize", redraw);
  let typing = null;
  $("filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      fleet.q = $("filter").value.trim().toLowerCase();
      $("wrap").scrollTop = 0;
      render();
      writeHash();
    }, 80);
  });
  // a click anywhere on a row opens that site's dashboard (the name is the link itself)
  $("rows").addEventListener("click", (ev) => {
    if (ev.target.closest("a")) return;
    const tr = ev.target.closest("tr[data-i]");
    if (tr) location.href = fleet.visible[Number(tr.dataset.i)].href;
  });
  setInterval(refresh, REFRESH_MS);
}

start().catch((e) => {
  $("banner").hidden = false;
  $("banner-title").textContent = "Fleet page error.";
  $("banner-text").textContent = String(e.message || e);
});
