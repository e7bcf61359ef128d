// The embedded status board: renders the boards defined in dashboards/boards.py from the worker's API.
// Same panels and SQL as Grafana; refreshes at most every 5 s; Korean labels with an English switch.
import uPlot from "uplot";
import uplotCss from "uplot/dist/uPlot.min.css";

const STYLE = `
:root { --bg:#0f1720; --card:#17212b; --fg:#e8eef4; --muted:#8da2b5; --up:#e5534b; --down:#3fb950; --accent:#4ea1ff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); font:18px/1.4 "Noto Sans CJK KR","Noto Sans KR",sans-serif; }
header { padding:12px 20px; display:flex; flex-wrap:wrap; gap:12px 28px; align-items:center; background:#0b1118; }
h1 { font-size:26px; margin:0; }
nav a { color:var(--muted); margin-right:16px; text-decoration:none; font-size:18px; }
nav a.active { color:var(--fg); border-bottom:3px solid var(--accent); }
#controls { display:flex; flex-wrap:wrap; gap:12px; align-items:center; }
input, select, button { font-size:16px; background:var(--card); color:var(--fg); border:1px solid #2c3a47; padding:4px 8px; }
select[multiple] { height:2.2em; }
#updated { color:var(--muted); font-size:14px; }
main { display:grid; grid-template-columns:repeat(24, 1fr); gap:12px; padding:12px 20px; }
.panel { background:var(--card); border-radius:6px; padding:10px 14px; overflow:auto; min-height:160px; }
.panel h2 { font-size:19px; margin:0 0 8px; font-weight:600; }
.panel .error { color:var(--up); }
table { border-collapse:collapse; width:100%; font-size:17px; }
th, td { padding:4px 8px; border-bottom:1px solid #24313d; text-align:right; }
th:first-child, td:first-child { text-align:left; }
th { color:var(--muted); font-weight:500; }
.bars .row { display:grid; grid-template-columns:12em 1fr; gap:8px; align-items:center; margin:3px 0; font-size:15px; }
.bars .barline { display:flex; align-items:center; gap:6px; margin:1px 0; }
.bars .bar { height:14px; min-width:0; } .bars .barvalue { font-size:13px; color:var(--muted); white-space:nowrap; }
.legend .key { margin-right:14px; } .legend .swatch { display:inline-block; width:14px; height:12px; vertical-align:middle; }
.grid { display:grid; grid-template-columns:repeat(5, 1fr); gap:8px; }
.tile { border-radius:6px; padding:8px; min-height:84px; background:#24313d; }
.tile b { display:block; font-size:17px; } .tile span { font-size:15px; color:#dfe7ee; display:block; }
.legend { font-size:14px; color:var(--muted); }
#alerts-banner { padding:8px 20px; font-size:17px; display:flex; flex-wrap:wrap; gap:6px 24px; }
#alerts-banner[hidden] { display:none; }
#alerts-banner[data-class=data_fault] { background:#5a3b00; } #alerts-banner[data-class=labour_market] { background:#5c1f1c; }
#alerts-banner a { color:var(--fg); }
.alerts a { color:#8ab4f8; }
.alerts { grid-column:span 24; } .alerts td { text-align:left; vertical-align:top; }
.info { background:none; border:0; color:var(--muted); cursor:pointer; font-size:14px; padding:0 2px; }
.definition[hidden] { display:none; }
.definition { display:block; font-size:13px; color:var(--muted); text-align:left; font-weight:normal; max-width:60ch; white-space:normal; }
.headline-day { margin:0 0 6px; color:var(--muted); } .headline small { color:var(--muted); }
.change.flat { color:var(--muted); }
.sev-critical { color:#ff7b72; font-weight:600; } .sev-warning { color:#f0b429; } .state-resolved { color:var(--muted); }
`;

const I18N = {
  ko: { from: "시작", to: "끝", all: "전체", suppressed: "<3", updated: "갱신", through: "자료 기준", lang: "English",
        error: "오류", wow: "전주 대비", claims: "실업급여 신청", openings: "구인",
        alerts: "경보", firing: "발생 중", resolved: "해소", data_fault: "자료 장애", labour_market: "노동시장 신호",
        critical: "심각", warning: "주의", info: "정보", since: "최초 감지", until: "해소 시각", what: "내용",
        observed: "관측", expected: "예상 (범위)", inhibited: "자료 장애로 억제됨", no_alerts: "경보 없음",
        firing_now: "발생 중인 경보", all_alerts: "경보 전체 보기",
        briefings: "일일 브리핑", day: "날짜", subject: "제목", sent: "발송", not_sent: "미발송", archived: "보관만 (수신자 없음)",
        no_briefings: "브리핑 없음", attempts: "시도" },
  en: { from: "From", to: "To", all: "All", suppressed: "<3", updated: "Updated", through: "Data through", lang: "한국어",
        error: "Error", wow: "vs last week", claims: "UI claims", openings: "Openings",
        alerts: "Alerts", firing: "firing", resolved: "resolved", data_fault: "data fault",
        labour_market: "labour-market signal", critical: "critical", warning: "warning", info: "info",
        since: "First seen", until: "Resolved", what: "What", observed: "Observed", expected: "Expected (interval)",
        inhibited: "explained by a data fault", no_alerts: "No alerts", firing_now: "firing now",
        all_alerts: "all alerts",
        briefings: "Daily briefings", day: "Day", subject: "Subject", sent: "Sent", not_sent: "not sent yet",
        archived: "archived only (no recipients)", no_briefings: "No briefings", attempts: "Attempts" },
};
const GRID = { "28": [0, 0], "11": [1, 0], "51": [2, 0], "41": [1, 1], "43": [2, 1], "44": [0, 2], "36": [1, 2],
  "30": [2, 2], "47": [3, 2], "52": [0, 3], "27": [3, 3], "31": [4, 3], "29": [0, 4], "46": [1, 4], "48": [2, 4],
  "26": [3, 4], "50": [0, 5] };

const params = new URLSearchParams(location.search);
// The API's token is never taken from the URL (it would sit in the history, logs and referrers): a board
// behind a token gets a session cookie from the login page (/api/session), sent with every request.
const state = {
  lang: params.get("lang") === "en" ? "en" : "ko",
  board: params.get("board") || "lmis-national",
  vars: {}, from: null, to: null, boards: [], labels: {}, charts: {},
  alertsPage: params.get("page") === "alerts",
  briefingsPage: params.get("page") === "briefings",
};

async function fetchOk(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (r.status === 401) {
    location.reload(); // the session ended: the page asks for the token again
    throw new Error("401");
  }
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return r;
}
const api = async (path) => (await fetchOk(path)).json();

// Elements are built with text nodes only: no text from the API or the URL is ever parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "style") Object.assign(e.style, v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : String(c));
  return e;
}

const t = (k) => I18N[state.lang][k] || k;
const NS = { region: "region", industry: "industry", occupation: "occupation" };
const label = (code, ns) => (code == null ? "" : (ns && state.labels[NS[ns]] || {})[code]
  || state.labels.measure[code] || state.labels.column[code] || code);
// null is a suppressed count of 1 or 2 persons ("<3") in a column of persons, and missing ("—") elsewhere.
const fmt = (v, persons = false) => (v === null ? (persons ? t("suppressed") : "—") : typeof v === "number"
  ? (Number.isInteger(v) ? v.toLocaleString() : v.toLocaleString(undefined, { maximumFractionDigits: 3 })) : String(v));
const DURATIONS = new Set(["behind_s"]); // columns of seconds
// Seconds as an official reads them: "274일 3시간", "3분 12초" (the largest two units).
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const ko = state.lang === "ko";
  const units = ko ? [["일", 86400], ["시간", 3600], ["분", 60], ["초", 1]] : [[" d", 86400], [" h", 3600], [" min", 60], [" s", 1]];
  let rest = Math.max(0, Math.round(seconds));
  const parts = [];
  for (const [name, size] of units) {
    if (rest >= size || (size === 1 && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size).toLocaleString()}${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}
const signed = (v, digits = 0) => (v === null ? "—"
  : `${v > 0 ? "+" : v < 0 ? "−" : "±"}${Math.abs(v).toLocaleString(undefined, { maximumFractionDigits: digits })}`);

function board() { return state.boards.find((b) => b.uid === state.board) || state.boards[0]; }

function query(panel) {
  const q = new URLSearchParams({ from: state.from, to: state.to });
  for (const [name, values] of Object.entries(state.vars)) if (values.length) q.append(name, values.join(","));
  return `/api/boards/${encodeURIComponent(board().uid)}/panels/${encodeURIComponent(panel.id)}?${q}`;
}

function renderTable(el, panel, data) {
  const cols = data.columns.map((c) => c.name);
  // The column of codes to show with their labels: the one named so, else the first.
  const coded = panel.label_column ? Math.max(0, cols.indexOf(panel.label_column)) : -1;
  el.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, cols.map((c, i) => h("th", {}, i === 0 ? "" : label(c))))),
    h("tbody", {}, data.rows.map((r) => h("tr", {},
      r.map((v, i) => h("td", {}, i === coded ? label(v, panel.label_column)
        : DURATIONS.has(cols[i]) ? duration(v) : fmt(v, (panel.persons || []).includes(cols[i])))))))));
}

// A figure's definition (meaning, formula, source): on hover as a tooltip, and on a click of "ⓘ" in full.
function defined(key, ...children) {
  const d = (state.definitions || {})[key];
  if (!d) return h("span", {}, ...children);
  const words = state.lang === "ko" ? ["정의", "산식", "출처"] : ["Definition", "Formula", "Source"];
  const text = `${d.meaning}\n${words[1]}: ${d.formula}\n${words[2]}: ${d.source}`;
  const box = h("span", { class: "definition", hidden: true, dataset: { key } },
    h("b", {}, `${words[0]} `), d.meaning, h("br"), h("b", {}, `${words[1]} `), d.formula, h("br"),
    h("b", {}, `${words[2]} `), d.source);
  const button = h("button", { class: "info", type: "button", title: text, "aria-label": `${words[0]}: ${key}` }, "ⓘ");
  button.addEventListener("click", () => { box.hidden = !box.hidden; });
  return h("span", { class: "defined", title: text }, ...children, " ", button, box);
}

const dayShift = (iso, days) => new Date(Date.parse(`${iso}T00:00:00Z`) - days * DAY_S * 1000).toISOString().slice(0, 10);

// The headline: each indicator's value on the last complete day, its 7-day average, and its change (and %)
// against the day before, the same weekday a week earlier and 52 weeks earlier. A row's unit says whether
// its nulls are suppressed counts of persons ("<3") or missing ("—").
function renderHeadline(el, panel, data) {
  const cols = data.columns.map((c) => c.name);
  const at = (r, c) => r[cols.indexOf(c)];
  const head = ["indicator", "value", "ma7", "ma28", "change_1d", "change_7d", "change_364d"];
  const complete = state.to === state.latestDay ? (state.lang === "ko" ? " (최근 완결일)" : " (the last complete day)") : "";
  el.replaceChildren(h("p", { class: "headline-day" }, `${state.lang === "ko" ? "기준일" : "Day"} ${state.to}${complete}`),
    h("table", { class: "headline" },
      h("thead", {}, h("tr", {}, head.map((c, i) => h("th", {}, i === 0 ? "" : defined(c, label(c)))))),
      h("tbody", {}, data.rows.map((r) => {
        const unit = at(r, "unit");
        const persons = unit === "persons";
        const digits = unit === "ratio" ? 3 : 0;
        const change = (lag) => {
          const c = at(r, `change_${lag}`);
          const pct = at(r, `pct_${lag}`);
          const cls = c === null || c === 0 ? "flat" : c > 0 ? "up" : "down";
          // A public holiday on one side of the comparison only: marked, with its name.
          const base = dayShift(state.to, { "1d": 1, "7d": 7, "364d": 364 }[lag]);
          const off = [state.to, base].filter((d) => (state.holidays || {})[d]);
          const mark = off.length === 1 && c !== null;
          return h("td", { class: `change ${cls}`, dataset: { lag, holiday: mark ? "yes" : "no" },
            title: mark ? `${off[0]} ${state.lang === "ko" ? "공휴일" : state.holidays[off[0]]}` : null },
          signed(c, digits), pct === null ? "" : ` (${signed(pct, 1)}%)`, mark ? " †" : "");
        };
        return h("tr", { dataset: { indicator: at(r, "indicator"), unit } },
          h("td", {}, defined(at(r, "indicator"), label(at(r, "indicator"), panel.label_column),
            h("small", {}, ` ${label(unit)}`))),
          h("td", { class: "value" }, fmt(at(r, "value"), persons)),
          h("td", {}, fmt(at(r, "ma7"), persons && unit !== "ratio")),
          h("td", {}, fmt(at(r, "ma28"), persons && unit !== "ratio")),
          change("1d"), change("7d"), change("364d"));
      }))));
}

// One colour per measure on every panel and board (a measure keeps its colour when a region is chosen).
const COLOURS = {
  ui_initial_claims: "#e5534b", "ui.initial_claim": "#e5534b", openings_posted: "#4ea1ff", "openings.posted": "#4ea1ff",
  new_job_seekers: "#f0b429", "seeker.registered": "#f0b429", hires: "#3fb950", "application.outcome:hired": "#3fb950",
  insured_losses: "#c678dd", "insurance.loss": "#c678dd", insured_acquisitions: "#56d4dd",
  "insurance.acquisition": "#56d4dd", this_year: "#4ea1ff", last_year: "#8da2b5", model: "#4ea1ff", rule: "#f0b429",
  random: "#8da2b5", vacancies: "#4ea1ff",
};
const PALETTE = ["#4ea1ff", "#f0b429", "#3fb950", "#e5534b", "#c678dd", "#56d4dd", "#d19a66", "#98c379"];
const colour = (key, i) => COLOURS[key] || PALETTE[i % PALETTE.length];

// Bars on one scale for the whole panel (so that two measures compare), each with its value; a suppressed
// count is written "<3" with no bar, never drawn as a zero.
function renderBars(el, panel, data) {
  const cols = data.columns.map((c) => c.name);
  const measures = cols.slice(1);
  const max = Math.max(1, ...data.rows.flatMap((r) => r.slice(1).map((v) => v || 0)));
  const legend = h("div", { class: "legend" }, measures.map((c, j) => h("span", { class: "key", dataset: { measure: c } },
    h("span", { class: "swatch", style: { background: colour(c, j) } }), " ", label(c))));
  const bars = h("div", { class: "bars" }, data.rows.map((r) => h("div", { class: "row" },
    h("span", {}, label(r[0], panel.label_column)),
    h("div", {}, r.slice(1).map((v, j) => h("div", { class: "barline", dataset: { measure: measures[j] } },
      h("div", { class: "bar", title: `${label(measures[j])}: ${fmt(v, (panel.persons || []).includes(measures[j]))}`,
        style: { width: `${(100 * (v || 0)) / max}%`, background: colour(measures[j], j) } }),
      h("span", { class: "barvalue" }, fmt(v, (panel.persons || []).includes(measures[j])))))))));
  el.replaceChildren(legend, bars);
}

function renderGrid(el, panel, data) {
  const cols = data.columns.map((c) => c.name);
  const at = (r, name) => r[cols.indexOf(name)];
  el.replaceChildren(h("div", { class: "grid" }, data.rows.map((r) => {
    const change = at(r, "ui_change_wow_pct");
    const [x, y] = GRID[r[0]] || [4, 5];
    const hue = change == null ? "#24313d" : change > 0
      ? `rgba(229,83,75,${Math.min(0.9, 0.25 + Math.abs(change) / 60)})` : `rgba(63,185,80,${Math.min(0.9, 0.25 + Math.abs(change) / 60)})`;
    return h("div", { class: "tile", dataset: { region: String(r[0]) },
      style: { gridColumn: String(x + 1), gridRow: String(y + 1), background: hue } },
    h("b", {}, label(r[0], "region")),
    h("span", {}, `${t("claims")} ${fmt(at(r, "ui_initial_claims_7d"))}`),
    h("span", {}, `${t("wow")} ${change == null ? "—" : (change > 0 ? "+" : "") + change + "%"}`),
    h("span", {}, `${t("openings")} ${fmt(at(r, "openings_posted_7d"))}`));
  })));
}

const DAY_S = 86400;
const KST_S = 9 * 3600;
const dayOf = (ts) => new Date((ts + KST_S) * 1000).toISOString().slice(0, 10); // ts: epoch seconds
const monthDay = (ts) => { const d = new Date((ts + KST_S) * 1000); return `${d.getUTCMonth() + 1}/${d.getUTCDate()}`; };

// Time series: daily series on every day of their span (a day without data is a gap, never bridged), dates
// as 3/8 on the axis, public holidays shaded, and the legend and axes in the board's language.
function renderSeries(el, panel, data) {
  const cols = data.columns.map((c) => c.name);
  const valueCols = cols.filter((c) => c !== "time" && c !== "series");
  let times = [...new Set(data.rows.map((r) => r[0] / 1000))].sort((a, b) => a - b);
  const daily = times.length > 0 && times.every((x) => (x + KST_S) % DAY_S === 0);
  if (daily && times.length > 1) {
    const all = [];
    for (let x = times[0]; x <= times[times.length - 1]; x += DAY_S) all.push(x);
    times = all;
  }
  if (!daily && times.length > 2) {  // a stretch without buckets is a gap, not a line across it
    const steps = times.slice(1).map((x, i) => x - times[i]).sort((a, b) => a - b);
    const step = steps[Math.floor(steps.length / 2)];
    times = times.flatMap((x, i) => (i > 0 && x - times[i - 1] > 2 * step ? [times[i - 1] + step, x] : [x]));
  }
  const index = new Map(times.map((x, i) => [x, i]));
  const series = new Map();
  for (const r of data.rows) {
    const row = Object.fromEntries(cols.map((c, i) => [c, r[i]]));
    for (const vc of valueCols) {
      const key = cols.includes("series") ? row.series : vc;
      if (!series.has(key)) series.set(key, new Array(times.length).fill(null));
      series.get(key)[index.get(row.time / 1000)] = row[vc];
    }
  }
  const ko = state.lang === "ko";
  const holidays = state.holidays || {};
  const shade = (u) => {
    if (!daily) return;
    const { ctx, bbox } = u;
    ctx.save();
    ctx.fillStyle = "rgba(240, 180, 41, 0.12)";
    for (const x of times) {
      if (!holidays[dayOf(x)]) continue;
      const a = u.valToPos(x - DAY_S / 2, "x", true);
      const b = u.valToPos(x + DAY_S / 2, "x", true);
      ctx.fillRect(a, bbox.top, b - a, bbox.height);
    }
    ctx.restore();
  };
  const clock = new Intl.DateTimeFormat(ko ? "ko-KR" : "en-GB", { timeZone: "Asia/Seoul", month: "numeric",
    day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
  const at = (ts) => clock.format(new Date(ts * 1000));
  const when = (u, ts) => (ts == null ? "" : daily ? `${dayOf(ts)}${holidays[dayOf(ts)] ? ` (${ko ? "공휴일" : holidays[dayOf(ts)]})` : ""}`
    : at(ts));
  const opts = {
    width: Math.max(300, el.clientWidth - 10), height: 260,
    // Days are Asia/Seoul days whatever the viewer's time zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Asia/Seoul"),
    series: [{ label: ko ? (daily ? "날짜" : "시각") : (daily ? "Day" : "Time"), value: when },
      ...[...series.keys()].map((k, i) => ({ label: label(k), stroke: colour(k, i), width: 2, spanGaps: false }))],
    axes: [{ stroke: "#8da2b5", grid: { stroke: "#24313d" },
      values: (u, splits) => {
        const ticks = splits.map(daily ? monthDay : at);
        el.dataset.xticks = ticks.join(" "); // drawn on the canvas: kept here for whoever checks them
        return ticks;
      } },
    { stroke: "#8da2b5", grid: { stroke: "#24313d" }, size: 70,
      label: panel.y_unit ? `${label(valueCols[0])} (${label(panel.y_unit)})` : label(valueCols[0]) }],
    legend: { show: true },
    hooks: { drawClear: [shade] },
    // The axis spans the board's range (one point alone was drawn from 2027 to 2029), or the data's own
    // span for a panel in the sources' time on a board of the wall clock's.
    scales: { x: { time: true, range: () => (panel.time_axis === "data" && times.length
      ? [times[0], times[times.length - 1] + (times.length > 1 ? 0 : 3600)]
      : [Date.parse(`${state.from}T00:00:00+09:00`) / 1000,
        Date.parse(`${state.to}T00:00:00+09:00`) / 1000 + (daily ? 0 : DAY_S)]) } },
  };
  const aligned = [times, ...series.values()];
  el.replaceChildren();
  if (state.charts[panel.id]) state.charts[panel.id].destroy();
  state.charts[panel.id] = new uPlot(opts, aligned, el);
  el.dataset.daily = String(daily);
  el.dataset.ylabel = opts.axes[1].label; // drawn on the canvas: kept here for whoever checks it
  el.dataset.holidays = String(daily ? times.filter((x) => holidays[dayOf(x)]).length : 0);
}

const RENDER = { headline: renderHeadline, table: renderTable, stat: renderTable, bar: renderBars, grid: renderGrid, timeseries: renderSeries };

async function refreshPanel(panel) {
  const card = document.getElementById(`panel-${panel.id}`);
  const body = card.querySelector(".body");
  try {
    // The browser revalidates with the panel's ETag (a 304 moves no data); unchanged data, drawn in the same
    // language, are not drawn again.
    const url = query(panel);
    const r = await fetchOk(url);
    const version = `${state.lang} ${url} ${r.headers.get("etag")}`;
    if (card.dataset.version === version && card.dataset.state !== "error") return;
    const data = await r.json();
    RENDER[panel.kind](body, panel, data);
    card.dataset.version = version;
    card.dataset.state = data.rows.length ? "ok" : "empty";
    card.dataset.rows = String(data.rows.length);
  } catch (e) {
    body.replaceChildren(h("p", { class: "error" }, `${t("error")}: ${e.message}`));
    card.dataset.state = "error";
  }
}

function layout() {
  const b = board();
  document.title = state.lang === "ko" ? b.ko : b.en;
  document.getElementById("title").textContent = state.lang === "ko" ? b.ko : b.en;
  document.getElementById("lang").textContent = t("lang");
  document.querySelectorAll("[data-i18n]").forEach((e) => (e.textContent = t(e.dataset.i18n)));
  document.getElementById("boards").replaceChildren(...state.boards.map((x) => {
    const q = new URLSearchParams({ board: x.uid, lang: state.lang });
    return h("a", { href: `?${q}`, class: x.uid === b.uid && !state.alertsPage && !state.briefingsPage ? "active" : "" },
      state.lang === "ko" ? x.ko : x.en);
  }), h("a", { href: `?${new URLSearchParams({ page: "alerts", lang: state.lang })}`, id: "alerts-link",
    class: state.alertsPage ? "active" : "" }, t("alerts")),
  h("a", { href: `?${new URLSearchParams({ page: "briefings", lang: state.lang })}`, id: "briefings-link",
    class: state.briefingsPage ? "active" : "" }, t("briefings")));
  if (state.alertsPage || state.briefingsPage) {
    const page = state.alertsPage ? "alerts" : "briefings";
    document.title = `LMIS · ${t(page)}`;
    document.getElementById("title").textContent = `LMIS · ${t(page)}`;
    // no dates or filters here (the language switch stays)
    document.querySelectorAll("#controls label, #variables").forEach((e) => (e.hidden = true));
    document.getElementById("panels").replaceChildren(h("section", { class: "panel alerts", id: `${page}-page` }));
    return;
  }
  document.getElementById("variables").replaceChildren(...b.variables.map((v) => h("label", {},
    `${state.lang === "ko" ? v.ko : v.en} `,
    h("select", { id: `var-${v.name}`, dataset: { var: v.name } },
      h("option", { value: "" }, t("all")),
      v.options.map((o) => h("option", { value: o.value, selected: (state.vars[v.name] || []).includes(o.value) },
        state.lang === "ko" ? o.label_ko : o.label_en))))));
  document.querySelectorAll("select[data-var]").forEach((s) => s.addEventListener("change", () => {
    state.vars[s.dataset.var] = s.value ? [s.value] : [];
    refreshAll();
  }));
  document.getElementById("panels").replaceChildren(...b.panels.map((p) => h("section", {
    class: "panel", id: `panel-${p.id}`, dataset: { kind: p.kind, state: "loading" },
    style: { gridColumn: `span ${p.width}` } }, h("h2", {}, state.lang === "ko" ? p.ko : p.en), h("div", { class: "body" }))));
}

// The event time the aggregates hold (the worker's clock: every source read up to then), in Asia/Seoul:
// what "now" means for every number on the board. Absent where no worker serves the board.
async function dataThrough() {
  try {
    const visible = (await api("/api/health?store=false")).event_time?.visible;
    if (!visible) return "";
    const kst = new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Seoul", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit" }).format(new Date(visible));
    return `${t("through")} ${kst} KST · `;
  } catch (e) {
    return "";
  }
}

const kstTime = (iso) => (iso ? new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Seoul", year: "numeric",
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).format(new Date(iso)) : "—");
const summary = (a) => (state.lang === "ko" ? a.summary_ko : a.summary_en);
const num = (v) => (v == null ? "—" : Math.round(v).toLocaleString());

// The banner on every page: the alerts firing now (not those a data fault explains away), the most severe first.
async function refreshBanner() {
  const banner = document.getElementById("alerts-banner");
  try {
    const firing = (await api("/api/alerts?state=firing&limit=200")).alerts.filter((a) => !a.inhibited_by);
    const rank = { critical: 0, warning: 1, info: 2 };
    firing.sort((a, b) => rank[a.severity] - rank[b.severity] || (a.class === "data_fault" ? -1 : 1));
    banner.hidden = firing.length === 0;
    banner.dataset.count = String(firing.length);
    if (!firing.length) return banner.replaceChildren();
    banner.dataset.class = firing[0].class;
    const q = new URLSearchParams({ page: "alerts", lang: state.lang });
    banner.replaceChildren(h("b", {}, `${t("firing_now")} ${firing.length}`),
      ...firing.slice(0, 3).map((a) => h("span", { class: `sev-${a.severity}`, dataset: { fingerprint: a.fingerprint } },
        `[${t(a.class)}] ${summary(a)}`)),
      h("a", { href: `?${q}` }, `${t("all_alerts")} →`));
  } catch (e) {
    banner.hidden = true;
  }
}

async function refreshAlertsPage() {
  const el = document.getElementById("alerts-page");
  const alerts = (await api("/api/alerts?limit=500")).alerts;
  const cols = ["state", "class", "severity", "since", "until", "what", "observed", "expected"];
  el.replaceChildren(h("h2", {}, t("alerts")), alerts.length === 0 ? h("p", {}, t("no_alerts")) : h("table", {},
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, t(c))))),
    h("tbody", {}, alerts.map((a) => h("tr", { id: a.fingerprint, class: `state-${a.state}`,
      dataset: { state: a.state, class: a.class, name: a.name } },
    h("td", {}, a.inhibited_by ? t("inhibited") : t(a.state)), h("td", {}, t(a.class)),
    h("td", { class: `sev-${a.severity}` }, t(a.severity)), h("td", {}, kstTime(a.starts_at)),
    h("td", {}, kstTime(a.ends_at)), h("td", {}, summary(a)), h("td", {}, num(a.observed)),
    h("td", {}, a.expected == null ? "—" : `${num(a.expected)} (${num(a.lower)}–${num(a.upper)})`))))));
}

// The briefings kept each morning, newest first, each one's page as it was sent.
async function refreshBriefingsPage() {
  const el = document.getElementById("briefings-page");
  const briefings = (await api("/api/briefings?limit=400")).briefings;
  const cols = ["day", "subject", "sent", "attempts"];
  const sent = (b) => (b.sent_at ? kstTime(b.sent_at) : b.recipients === 0 ? t("archived")
    : `${t("not_sent")}${b.last_error ? ` — ${b.last_error}` : ""}`);
  el.replaceChildren(h("h2", {}, t("briefings")), briefings.length === 0 ? h("p", {}, t("no_briefings")) : h("table", {},
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, t(c))))),
    h("tbody", {}, briefings.map((b) => h("tr", { dataset: { day: b.day, sent: b.sent_at ? "yes" : "no" } },
      h("td", {}, h("a", { href: `/api/briefings/${encodeURIComponent(b.day)}`, target: "_blank", rel: "noopener" },
        b.day)),
      h("td", {}, b.subject), h("td", {}, sent(b)), h("td", {}, String(b.attempts)))))));
}

async function refreshAll() {
  if (state.alertsPage || state.briefingsPage) {
    await Promise.all([refreshBanner(), state.alertsPage ? refreshAlertsPage() : refreshBriefingsPage()]);
    document.body.dataset.ready = "true";
    return;
  }
  const [through] = await Promise.all([dataThrough(), refreshBanner(), ...board().panels.map(refreshPanel)]);
  const updated = document.getElementById("updated");
  updated.textContent = `${through}${t("updated")} ${new Date().toLocaleTimeString()}`;
  updated.dataset.through = through ? "yes" : "no";
  document.body.dataset.ready = "true";
}

async function start() {
  const style = document.createElement("style");
  style.textContent = uplotCss + STYLE;
  document.head.appendChild(style);
  const meta = await api("/api/boards");
  state.boards = meta.boards;
  ({ labels: state.labels, definitions: state.definitions, holidays: state.holidays } = await api(`/api/labels?lang=${state.lang}`));
  const b = board();
  // Today is an Asia/Seoul day, as every day on the board: the UTC date lags it from 00:00 to 09:00 KST
  // (the pipeline board then showed yesterday, without the health rows being written).
  const seoulToday = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Seoul" }).format(new Date());
  state.latestDay = meta.latest_day;
  state.to = params.get("to") || (b.time_basis === "processing" ? seoulToday : meta.latest_day);
  const from = new Date(`${state.to}T00:00:00Z`);
  from.setUTCDate(from.getUTCDate() - (b.default_days - 1));
  state.from = params.get("from") || from.toISOString().slice(0, 10);
  for (const v of b.variables) state.vars[v.name] = (params.get(v.name) || "").split(",").filter(Boolean);
  layout();
  document.getElementById("from").value = state.from;
  document.getElementById("to").value = state.to;
  document.getElementById("from").addEventListener("change", (e) => { state.from = e.target.value; refreshAll(); });
  document.getElementById("to").addEventListener("change", (e) => { state.to = e.target.value; refreshAll(); });
  document.getElementById("lang").addEventListener("click", async () => {
    state.lang = state.lang === "ko" ? "en" : "ko";
    ({ labels: state.labels, definitions: state.definitions, holidays: state.holidays } = await api(`/api/labels?lang=${state.lang}`));
    layout();
    document.getElementById("from").value = state.from;
    document.getElementById("to").value = state.to;
    refreshAll();
  });
  await refreshAll();
  setInterval(refreshAll, Math.max(5, b.refresh_seconds) * 1000);
}

start().catch((e) => {
  document.getElementById("panels").replaceChildren(h("p", { class: "error" }, e.message));
});
