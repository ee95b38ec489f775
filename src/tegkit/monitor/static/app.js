// tegkit monitor dashboard: live power flow (server-sent events), history, daily energy,
// outages, and the controls when the monitor has a control token. No framework, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const FLOW_MIN_W = 20; // below this a line shows no flow (meter noise)

// Colours are defined once, as variables in style.css; the charts read them from there.
const rootStyle = getComputedStyle(document.documentElement);
function color(name, alpha = 1) {
  const hex = rootStyle.getPropertyValue("--" + name).trim(); // "#rrggbb"
  if (alpha === 1) return hex;
  const n = parseInt(hex.slice(1), 16);
  return "rgba(" + [n >> 16, (n >> 8) & 255, n & 255, alpha].join(", ") + ")";
}

const state = {
  gateway: new URLSearchParams(location.search).get("gateway"), // the fleet page links ?gateway=
  entry: null, // latest /api/live entry of the selected gateway
  receivedAt: 0, // Date.now() when the entry arrived
  serverNow: null, // the monitor's clock (epoch s) at the latest message
  tz: null, // the site's IANA time zone, when the monitor knows it
  span: "day",
  anchor: null, // a time (epoch s) inside the range shown
  vocab: null, // the monitor's words (/api/vocabulary); null when it could not be read
  csrf: null,
  control: false,
  charts: {},
  shade: { outages: [], gaps: [] }, // periods the history charts shade
};

// ---- formatting -------------------------------------------------------------------------

function kw(w) {
  if (w === null || w === undefined) return "–";
  const v = Math.abs(w) / 1000;
  return (v < 10 ? v.toFixed(2) : v.toFixed(1)) + " kW";
}
function kwh(wh) {
  if (wh === null || wh === undefined) return "–";
  const v = wh / 1000;
  return (v < 100 ? v.toFixed(1) : v.toFixed(0)) + " kWh";
}
function pct(p, digits = 0) {
  return p === null || p === undefined ? "–" : p.toFixed(digits) + " %";
}
function money(v, currency) {
  if (v === null || v === undefined) return "–";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(v);
  } catch (e) {
    return v.toFixed(2) + " " + currency;
  }
}
function ago(s) {
  if (s === null || s === undefined) return "no reading yet";
  if (s < 90) return "updated " + Math.round(s) + " s ago";
  if (s < 5400) return "updated " + Math.round(s / 60) + " min ago";
  return "updated " + (s / 3600).toFixed(1) + " h ago";
}
function dateTime(t) {
  return new Date(t * 1000).toLocaleString(undefined, {
    timeZone: state.tz || undefined,
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}
function duration(s) {
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + " h " : "") + (h || m ? m + " min " : "") + r + " s";
}
// Days, weeks and months are the site's (the monitor's time zone), not the browser's.
const fmtCache = {};
function tzParts(t) { // [year, month 0-11, day, hour, minute, second] at epoch s t, site time
  const tz = state.tz || undefined;
  const key = tz || "";
  const f = fmtCache[key] || (fmtCache[key] = new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", second: "numeric",
  }));
  const p = {};
  for (const x of f.formatToParts(new Date(t * 1000))) p[x.type] = x.value;
  return [+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second];
}
function offsetS(t) {
  const a = tzParts(t);
  return Date.UTC(a[0], a[1], a[2], a[3], a[4], a[5]) / 1000 - Math.floor(t);
}
function siteMidnight(y, m, d) { // epoch s of 00:00 site time on y-m-d (m, d may overflow)
  const guess = Date.UTC(y, m, d) / 1000;
  return guess - offsetS(guess - offsetS(guess));
}
function isoDay(t) {
  const [y, m, d] = tzParts(t);
  const p = (n) => String(n).padStart(2, "0");
  return y + "-" + p(m + 1) + "-" + p(d);
}
function dayTime(iso) { // noon site time of a YYYY-MM-DD day
  const [y, m, d] = iso.split("-").map(Number);
  return siteMidnight(y, m - 1, d) + 43200;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

// ---- vocabulary -------------------------------------------------------------------------

// The words for grid statuses and modes are the monitor's (tegkit.models.vocabulary), never
// written here. Without them the page shows the raw values and offers no controls.
async function loadVocabulary() {
  try {
    const v = await getJSON("api/vocabulary");
    const byValue = (list) => new Map(list.map((x) => [x.value, x]));
    state.vocab = { grid: byValue(v.grid_statuses), modes: byValue(v.modes) };
  } catch {
    state.vocab = null;
  }
}

function modeLabel(mode) {
  const known = state.vocab && state.vocab.modes.get(mode);
  return known ? known.label : mode;
}

// The chip's colour says on or off grid only when the monitor knows which; any other
// status is shown as sent (as text, never markup), in no colour.
function renderGridChip(gs) {
  const chip = $("grid-chip");
  const known = gs && state.vocab ? state.vocab.grid.get(gs) : undefined;
  const offGrid = known ? known.off_grid : null;
  chip.textContent = !gs ? "grid –" : known ? known.label : gs;
  chip.title = gs ? "grid status: " + gs : "";
  chip.className = "chip " + (!gs ? "" : offGrid === true ? "off-grid" : offGrid === false ? "on-grid" : "neutral");
}

// ---- live -----------------------------------------------------------------------------

function setFlow(name, watts, towardHub) {
  const line = $("line-" + name);
  const active = watts !== null && watts !== undefined && Math.abs(watts) >= FLOW_MIN_W;
  line.classList.toggle("active", active);
  // Each line is drawn from its node toward the hub ("home" from the hub toward home).
  line.classList.toggle("rev", active && !towardHub);
  if (active) line.style.animationDuration = Math.max(0.35, 1.6 - Math.abs(watts) / 4000) + "s";
}

function renderLive(entry) {
  state.entry = entry;
  state.receivedAt = Date.now();
  if (entry.taken_at) state.serverNow = Math.max(state.serverNow || 0, entry.taken_at);
  const r = entry.reading || {};
  const fresh = entry.status === "ok";
  $("v-solar").textContent = kw(r.solar_w);
  $("v-grid").textContent = kw(r.site_w);
  $("v-home").textContent = kw(r.load_w);
  $("v-battery").textContent = kw(r.battery_w);
  for (const n of document.querySelectorAll(".node")) n.classList.toggle("off", !fresh);
  setFlow("solar", fresh ? r.solar_w : null, true);
  setFlow("grid", fresh ? r.site_w : null, (r.site_w || 0) > 0);
  setFlow("home", fresh ? r.load_w : null, true);
  setFlow("battery", fresh ? r.battery_w : null, (r.battery_w || 0) > 0);
  $("v-grid").setAttribute("data-dir", (r.site_w || 0) >= 0 ? "import" : "export");
  $("v-battery").setAttribute("data-dir", (r.battery_w || 0) >= 0 ? "discharge" : "charge");

  const soe = entry.soe || {};
  const app = soe.app_percent;
  $("v-soe").textContent = app === null || app === undefined ? "–" : Math.round(app) + "%";
  $("v-soe").parentNode.setAttribute("aria-label", "state of energy " + pct(app) + " (raw " + pct(soe.raw_percent, 1) + ")");
  const bar = $("soe-bar");
  const h = app === null || app === undefined ? 0 : Math.max(0, Math.min(100, app)) * 0.4;
  bar.setAttribute("height", h.toFixed(1));
  bar.setAttribute("y", (20 - h).toFixed(1));

  renderGridChip(r.grid_status);
  $("mode").textContent = entry.mode ? modeLabel(entry.mode) : "–";
  const res = entry.backup_reserve || {};
  $("reserve").textContent = res.app_percent === null || res.app_percent === undefined
    ? "–" : pct(res.app_percent) + " (raw " + pct(res.raw_percent, 1) + ")";
  $("version").textContent = entry.version || "–";
  if (state.control && document.activeElement !== $("c-reserve") && res.app_percent !== null && res.app_percent !== undefined) {
    if (!$("c-reserve").value) $("c-reserve").value = Math.round(res.app_percent);
    if (entry.mode && !$("c-mode").dataset.touched) $("c-mode").value = entry.mode;
  }
  renderBanner(entry);
  tickFreshness();
}

function renderBanner(entry) {
  const banner = $("banner");
  const titles = { unreachable: "Gateway unreachable.", stopped: "System stopped.", unauthorized: "Login refused.", stale: "No fresh data." };
  if (entry.status === "ok") { banner.hidden = true; return; }
  banner.hidden = false;
  banner.className = "banner" + (entry.status === "stale" ? " warn" : "");
  $("banner-title").textContent = titles[entry.status] || entry.status;
  let text = entry.reason || "";
  if (entry.problem_since) text += " · since " + dateTime(entry.problem_since);
  $("banner-text").textContent = text;
}

function tickFreshness() {
  const e = state.entry;
  if (!e) return;
  const s = e.freshness_s === null ? null : e.freshness_s + (Date.now() - state.receivedAt) / 1000;
  $("fresh-text").textContent = e.status === "ok" ? ago(s) : e.status + (s === null ? "" : " · " + ago(s));
  $("fresh-dot").className = "dot " + (e.status === "ok" ? "ok" : e.status === "stale" ? "stale" : "bad");
}

async function loadLive() {
  const live = await getJSON("api/live");
  state.serverNow = live.now;
  const sel = $("gateway");
  const names = live.gateways.map((g) => g.gateway);
  if (sel.options.length !== names.length) {
    sel.replaceChildren(...names.map((n) => new Option(n, n)));
    sel.hidden = names.length < 2;
    $("fleet-link").hidden = names.length < 2;
  }
  if (!state.gateway || !names.includes(state.gateway)) state.gateway = names[0] || null;
  sel.value = state.gateway;
  const entry = live.gateways.find((g) => g.gateway === state.gateway);
  // each site keeps its own days: the chosen gateway's zone, else the monitor's
  state.tz = (entry && entry.tz) || live.tz || null;
  if (entry) renderLive(entry);
  return live;
}

function openStream() {
  if (!window.EventSource) { setInterval(loadLive, 5000); return; }
  const es = new EventSource("api/live/stream");
  es.onmessage = (ev) => {
    const entry = JSON.parse(ev.data);
    if (entry.gateway === state.gateway) renderLive(entry);
  };
  es.onerror = () => { $("fresh-text").textContent = "reconnecting…"; $("fresh-dot").className = "dot stale"; };
}

// ---- ranges ---------------------------------------------------------------------------

// The range of `span` that holds `anchor`, moved by `steps` whole ranges (a week is the
// seven days that end on the anchor's day).
function rangeOf(span, anchor, steps = 0) {
  const [y, m, d] = tzParts(anchor);
  const range = (start, end) => ({ start, end });
  if (span === "day") return range(siteMidnight(y, m, d + steps), siteMidnight(y, m, d + steps + 1));
  const w = 7 * steps;
  if (span === "week") return range(siteMidnight(y, m, d + w - 6), siteMidnight(y, m, d + w + 1));
  if (span === "month") return range(siteMidnight(y, m + steps, 1), siteMidnight(y, m + steps + 1, 1));
  return range(siteMidnight(y + steps, 0, 1), siteMidnight(y + steps + 1, 0, 1));
}

function shift(steps) {
  const r = rangeOf(state.span, state.anchor, steps);
  // a week ends on its anchor's day (noon of it); other ranges are anchored in their middle
  state.anchor = state.span === "week" ? r.end - 43200 : (r.start + r.end) / 2;
  refreshRange();
}

function rangeLabel(range) {
  const s = new Date(range.start * 1000), e = new Date(range.end * 1000 - 1000);
  const tz = { timeZone: state.tz || undefined };
  const o = { year: "numeric", month: "short", day: "numeric", ...tz };
  if (state.span === "day") return s.toLocaleDateString(undefined, { weekday: "short", ...o });
  if (state.span === "month") return s.toLocaleDateString(undefined, { year: "numeric", month: "long", ...tz });
  if (state.span === "year") return String(tzParts(range.start)[0]);
  return s.toLocaleDateString(undefined, o) + " – " + e.toLocaleDateString(undefined, o);
}

// ---- charts ---------------------------------------------------------------------------

const AXIS_PAD_PX = 4; // room left of the widest label

// A y axis as wide as its widest label (a fixed width cut "-0.4 kW" to ".4 kW"), or as the
// widest axis of its group (`shared`, see alignedAxes). uPlot asks first without labels
// (any width > 0 keeps the axis), then again whenever they change.
function labelSize(u, values, i, cycle, shared) {
  const axis = u.axes[i];
  if (!values) return 50;
  if (cycle > 1) return axis._size; // settled: the labels no longer depend on the width
  u.ctx.font = axis.font[0];
  const widths = values.filter((v) => v !== null).map((v) => u.ctx.measureText(v).width);
  const textPx = Math.max(0, ...widths) / devicePixelRatio;
  shared.px = Math.max(shared.px, Math.ceil(axis.ticks.size + axis.gap + textPx + AXIS_PAD_PX));
  return shared.px;
}

// Charts stacked in time share one y-axis width, so their times line up under the cursor:
// when one of them draws wider, the narrower ones are drawn again.
function alignedAxes(group) {
  const widen = () => {
    for (const u of group.charts) if (u.axes[1]._size < group.px) u.redraw(false, true);
  };
  return { hooks: { draw: widen } };
}

// An axis in the page's colours; with a unit, a y axis whose labels carry it.
function axis(unit, shared = { px: 0 }) {
  const style = { stroke: color("muted"), grid: { stroke: color("grid-line"), width: 1 }, ticks: { stroke: color("line") } };
  if (!unit) return style;
  return {
    ...style,
    size: (u, values, i, cycle) => labelSize(u, values, i, cycle, shared),
    values: (u, v) => v.map((x) => x + " " + unit),
  };
}

// The history charts shade grid outages (red) and gaps without readings (hatched grey:
// monitor stopped, gateway unreachable, system stopped) so a missing line is explained.
let gapFill = null;

function gapPattern(ctx) {
  if (gapFill) return gapFill;
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  t.fillStyle = color("grid", 0.1);
  t.fillRect(0, 0, 8, 8);
  t.strokeStyle = color("grid", 0.45);
  t.lineWidth = 2;
  t.beginPath(); t.moveTo(-2, 10); t.lineTo(10, -2); t.moveTo(6, 10); t.lineTo(10, 6); t.moveTo(-2, 2); t.lineTo(2, -2); t.stroke();
  gapFill = ctx.createPattern(tile, "repeat");
  return gapFill;
}

function shadePlugin() {
  const shade = (u, periods, fill) => {
    u.ctx.fillStyle = fill;
    for (const p of periods) {
      // an open period lasts until now, never into the future
      const end = p.end === null ? Math.min(u.scales.x.max, state.serverNow || u.scales.x.max) : p.end;
      const x0 = Math.max(u.bbox.left, u.valToPos(p.start, "x", true));
      const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(end, "x", true));
      if (x1 > x0) u.ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    }
  };
  return {
    hooks: {
      drawClear: (u) => {
        u.ctx.save();
        shade(u, state.shade.outages, color("danger", 0.16));
        shade(u, state.shade.gaps, gapPattern(u.ctx));
        u.ctx.restore();
      },
    },
  };
}

function renderGapNote(gaps) {
  const parts = gaps.slice(-3).map((g) => g.reason + " (" + dateTime(g.start) + ", " +
    (g.end === null ? "ongoing" : duration(g.end - g.start)) + ")");
  const more = gaps.length > 3 ? " and " + (gaps.length - 3) + " earlier" : "";
  $("gap-note").textContent = gaps.length ? "No readings: " + parts.join("; ") + more : "";
}

function chartWidth(el) { return Math.max(280, el.clientWidth); }

const chartEl = (key) => $("chart-" + key); // the chart "power" lives in #chart-power

function makeChart(key, opts, data) {
  if (state.charts[key]) state.charts[key].destroy();
  const tzDate = state.tz ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), state.tz) } : {};
  const el = chartEl(key);
  const u = new uPlot({ width: chartWidth(el), ...tzDate, ...opts }, data, el);
  state.charts[key] = u;
  return u;
}

function kwSeries(label, meter, fillAlpha) {
  return {
    label, stroke: color(meter), width: 1.6, fill: fillAlpha ? color(meter, fillAlpha) : undefined,
    spanGaps: false, value: (u, v) => (v === null ? "–" : v.toFixed(2) + " kW"),
  };
}

function renderHistory(h, range) {
  const t = h.t;
  const toKw = (a) => a.map((w) => (w === null ? null : w / 1000));
  const sync = uPlot.sync("hist");
  const cursor = { sync: { key: sync.key } };
  const yAxes = { px: 0, charts: [] };
  const plugins = [shadePlugin(), alignedAxes(yAxes)];
  yAxes.charts.push(makeChart("power", {
    height: 260, cursor, plugins,
    scales: { x: { time: true, range: [range.start, range.end] } },
    axes: [axis(), axis("kW", yAxes)],
    series: [
      {},
      kwSeries("Solar", "solar", 0.12),
      kwSeries("Grid", "grid"),
      kwSeries("Home", "home"),
      kwSeries("Powerwall", "battery"),
    ],
  }, [t, toKw(h.solar_w), toKw(h.site_w), toKw(h.load_w), toKw(h.battery_w)]));
  yAxes.charts.push(makeChart("soe", {
    height: 150, cursor, plugins, legend: { show: true },
    scales: { x: { time: true, range: [range.start, range.end] }, y: { range: [0, 100] } },
    axes: [axis(), axis("%", yAxes)],
    series: [
      {},
      { label: "Powerwall charge (app %)", stroke: color("battery"), width: 1.6, fill: color("battery", 0.1),
        value: (u, v) => (v === null ? "–" : v.toFixed(1) + " %") },
    ],
  }, [t, h.soe_app_percent]));
}

function renderDaily(daily, firstDay, lastDay) {
  const days = daily.days;
  const t = days.map((d) => dayTime(d.day));
  const bars = (align) => uPlot.paths.bars({ size: [0.38, 40], align });
  const val = (u, v) => (v === null ? "–" : v.toFixed(1) + " kWh");
  const k = (f) => days.map((d) => (d[f] === null ? null : d[f] / 1000));
  // days the monitor did not record, filled from Tesla's cloud by `teg monitor backfill`
  const cloudT = new Set(days.filter((d) => d.source === "cloud").map((d) => dayTime(d.day)));
  const every = Math.max(1, Math.ceil(t.length / Math.max(1, chartWidth(chartEl("daily")) / 70)));
  const label = (v) => new Date(v * 1000).toLocaleDateString(undefined, {
    month: "short", day: "numeric", timeZone: state.tz || undefined,
  });
  makeChart("daily", {
    height: 240,
    scales: { x: { time: true, range: [dayTime(firstDay) - 43200, dayTime(lastDay) + 43200] } },
    axes: [
      { ...axis(), splits: () => t.filter((_, i) => i % every === 0), values: (u, v) => v.map(label) },
      axis("kWh"),
    ],
    series: [
      { value: (u, v) => (v === null ? "–" : isoDay(v) + (cloudT.has(v) ? " (from the cloud)" : "")) },
      { label: "Home", stroke: color("home"), fill: color("home", 0.55), paths: bars(-1), points: { show: false }, value: val },
      { label: "Solar", stroke: color("solar"), fill: color("solar", 0.6), paths: bars(1), points: { show: false }, value: val },
      { label: "From grid", stroke: color("grid"), width: 1.5, dash: [4, 4], value: val },
    ],
  }, [t, k("home_wh"), k("solar_wh"), k("grid_in_wh")]);
  const home = days.reduce((a, d) => a + (d.home_wh || 0), 0);
  const solar = days.reduce((a, d) => a + (d.solar_wh || 0), 0);
  const cloud = cloudT.size ? " · " + cloudT.size + (cloudT.size === 1 ? " day" : " days") + " from the cloud" : "";
  $("daily-total").textContent = days.length ? "home " + kwh(home) + " · solar " + kwh(solar) + cloud : "no data";
}

function renderOutages(list) {
  const rows = list.slice().reverse().slice(0, 50).map((o) => {
    const tr = document.createElement("tr");
    const cells = [dateTime(o.start), o.end === null ? "ongoing" : dateTime(o.end),
      o.end === null ? "–" : duration(o.duration_s)];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.innerHTML = '<td colspan="3" class="muted">none in this range</td>';
    rows.push(tr);
  }
  $("outage-rows").replaceChildren(...rows);
  $("out-count").textContent = list.length ? list.length + " in this range" : "";
}

// ---- plan -----------------------------------------------------------------------------

// The plan the monitor runs for this gateway (teg monitor --plan); the panel stays hidden
// without one. Times are the plan's own local times, as the monitor gives them.
function localWhen(iso, zone) { // "Sun 8 Mar 07:15 PDT" from "2026-03-08T07:15:00-07:00"
  const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
  const day = new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(undefined, {
    timeZone: "UTC", weekday: "short", day: "numeric", month: "short",
  });
  return day + " " + iso.slice(11, 16) + (zone ? " " + zone : "");
}

function cells(values) {
  const tr = document.createElement("tr");
  for (const v of values) {
    const td = document.createElement("td");
    if (v instanceof Node) td.append(v); else td.textContent = v;
    tr.append(td);
  }
  return tr;
}

function emptyRow(text) {
  const tr = cells([text]);
  tr.firstChild.colSpan = 3;
  tr.firstChild.className = "muted";
  return tr;
}

function renderPlan(doc) {
  const plan = doc.plan;
  $("plan").hidden = !plan;
  if (!plan) return;
  const how = plan.dry_run ? " · dry run" : "";
  $("plan-name").textContent = plan.name + (plan.tz ? " · " + plan.tz + " time" : " · waiting for the site's time zone") + how;
  const next = plan.next.map((a) => cells([localWhen(a.at_local, a.zone), a.rule, a.what]));
  $("plan-next").replaceChildren(...(next.length ? next : [emptyRow("no timed action ahead")]));
  const outcomes = plan.outcomes.map((o) => {
    const result = document.createElement("span");
    result.className = "result " + o.result;
    result.textContent = o.result.replace("_", " ");
    const row = cells([o.at_local ? localWhen(o.at_local, o.zone) : dateTime(o.at), o.rule, result]);
    row.title = o.detail;
    const detail = document.createElement("div");
    detail.className = "muted";
    detail.textContent = o.detail;
    row.lastChild.append(detail);
    return row;
  });
  $("plan-outcomes").replaceChildren(...(outcomes.length ? outcomes : [emptyRow("nothing done yet")]));
}

async function refreshPlan() {
  if (!state.gateway) return;
  renderPlan(await getJSON("api/automation?gateway=" + encodeURIComponent(state.gateway)));
}

async function refreshRange() {
  if (!state.gateway) return;
  const range = rangeOf(state.span, state.anchor);
  $("range-label").textContent = rangeLabel(range);
  for (const b of document.querySelectorAll(".range button")) b.classList.toggle("on", b.dataset.span === state.span);
  const g = encodeURIComponent(state.gateway);
  const q = "gateway=" + g + "&from=" + range.start + "&to=" + range.end;
  // Daily bars: the week up to the day shown for a day, the range itself otherwise.
  const dStart = state.span === "day" ? range.end - 7 * 86400 + 3600 : range.start;
  const firstDay = isoDay(dStart), lastDay = isoDay(range.end - 1);
  const dq = "gateway=" + g + "&from=" + firstDay + "&to=" + lastDay;
  const [hist, outages, daily] = await Promise.all([
    getJSON("api/history?" + q), getJSON("api/outages?" + q), getJSON("api/daily?" + dq),
  ]);
  state.shade = { outages: hist.outages, gaps: hist.gaps };
  renderHistory(hist, range);
  renderGapNote(hist.gaps);
  renderDaily(daily, firstDay, lastDay);
  renderOutages(outages.outages);
}

async function refreshToday() {
  if (!state.gateway || !state.serverNow) return;
  const today = isoDay(state.serverNow);
  const g = encodeURIComponent(state.gateway);
  const [daily, outages] = await Promise.all([
    getJSON("api/daily?gateway=" + g + "&from=" + today + "&to=" + today),
    getJSON("api/outages?gateway=" + g + "&from=" + rangeOf("day", state.serverNow).start + "&to=" + (state.serverNow + 1)),
  ]);
  $("today-date").textContent = new Date(state.serverNow * 1000).toLocaleDateString(undefined, {
    weekday: "long", month: "short", day: "numeric", timeZone: state.tz || undefined,
  });
  const d = daily.days[0] || {};
  $("s-self").textContent = pct(d.self_powered_percent);
  $("s-solar").textContent = kwh(d.solar_wh);
  $("s-home").textContent = kwh(d.home_wh);
  $("s-import").textContent = kwh(d.grid_in_wh);
  $("s-export").textContent = kwh(d.grid_out_wh);
  $("s-cost").textContent = money(d.cost, daily.currency);
  $("s-savings").textContent = money(d.savings, daily.currency);
  $("s-outages").textContent = String(outages.outages.length);
}

// ---- control --------------------------------------------------------------------------

// Only a monitor started with a control token has controls (/api/live says so); without
// one there is no /api/session to ask, and asking would leave a 404 in the console.
async function initControl(available) {
  if (!available) return;
  if (!state.vocab) { // no list of modes: nothing safe to offer, and the page says why
    for (const el of $("control").elements) el.disabled = true;
    $("control").hidden = false;
    $("c-result").textContent = "Controls are off: the monitor's list of modes could not be loaded. Reload the page to try again.";
    return;
  }
  state.control = true;
  const choices = [...state.vocab.modes.values()].filter((m) => m.customer);
  $("c-mode").replaceChildren(...choices.map((m) => new Option(m.label, m.value)));
  const s = await getJSON("api/session");
  showControl(s.logged_in, s.csrf_token);
  $("login-open").onclick = () => { $("login-error").textContent = ""; $("login").showModal(); };
  $("login-cancel").onclick = () => $("login").close();
  $("login-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const res = await fetch("login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: $("token").value }),
    });
    $("token").value = "";
    if (!res.ok) { $("login-error").textContent = (await res.json()).error || "login failed"; return; }
    $("login").close();
    showControl(true, (await res.json()).csrf_token);
  };
  $("logout").onclick = async () => {
    await fetch("logout", { method: "POST", headers: { "X-CSRF-Token": state.csrf } });
    showControl(false, null);
  };
  $("c-mode").onchange = () => { $("c-mode").dataset.touched = "1"; };
  $("control").onsubmit = async (ev) => {
    ev.preventDefault();
    $("c-apply").disabled = true;
    $("c-result").textContent = "applying…";
    try {
      const res = await fetch("api/control/operation", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf },
        body: JSON.stringify({
          gateway: state.gateway, mode: $("c-mode").value,
          backup_reserve_percent: Number($("c-reserve").value), scale: "app",
        }),
      });
      const body = await res.json();
      if (!res.ok) { $("c-result").textContent = body.error || "HTTP " + res.status; return; }
      const rr = body.backup_reserve;
      $("c-result").textContent = "Gateway reports: " + modeLabel(body.mode) + ", reserve " +
        pct(rr.app_percent) + " (raw " + pct(rr.raw_percent, 1) + ")" +
        (body.note ? " — " + body.note : "");  // the route, and whether it was read back
      delete $("c-mode").dataset.touched;
    } finally {
      $("c-apply").disabled = false;
    }
  };
}

function showControl(loggedIn, csrf) {
  state.csrf = csrf;
  $("control").hidden = !loggedIn;
  $("login-open").hidden = loggedIn;
}

// ---- start ----------------------------------------------------------------------------

async function start() {
  await loadVocabulary(); // first: the live state is shown in its words
  const live = await loadLive();
  state.anchor = state.serverNow || Date.now() / 1000;
  $("gateway").onchange = async () => {
    state.gateway = $("gateway").value;
    history.replaceState(null, "", "?gateway=" + encodeURIComponent(state.gateway));
    await loadLive(); // first: the charts' days follow this gateway's zone
    refreshRange(); refreshToday(); refreshPlan();
  };
  for (const b of document.querySelectorAll(".range button")) {
    b.onclick = () => { state.span = b.dataset.span; refreshRange(); };
  }
  $("prev").onclick = () => shift(-1);
  $("next").onclick = () => shift(1);
  openStream();
  await Promise.all([refreshRange(), refreshToday(), refreshPlan(), initControl(live.control)]);
  document.body.dataset.ready = "1"; // tests wait for this
  setInterval(tickFreshness, 1000);
  setInterval(() => {
    const r = rangeOf(state.span, state.anchor);
    if (state.serverNow && state.serverNow < r.end + 3600) refreshRange().catch(console.warn);
    refreshToday().catch(console.warn);
    refreshPlan().catch(console.warn);
  }, 20000);
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [key, u] of Object.entries(state.charts)) {
        u.setSize({ width: chartWidth(chartEl(key)), height: u.height });
      }
    }, 150);
  });
}

start().catch((e) => {
  $("banner").hidden = false;
  $("banner-title").textContent = "Dashboard error.";
  $("banner-text").textContent = String(e.message || e);
});
