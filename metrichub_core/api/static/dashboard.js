// MetricHub dashboard: reads the API, draws SVG itself (no library, no build step), keeps every view in the URL.
// Figures come from the API as they are; the page formats them and never computes a metric.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const API = "/api/v1/metrics/dora";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) if (value !== undefined && value !== null) node.setAttribute(key, value);
    for (const child of children) if (child !== undefined && child !== null) node.append(child);
    return node;
  }
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- formatting (display only) ----
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return seconds.toFixed(2) + "s";
    const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
    let rest = Math.round(seconds); const parts = [];
    for (const [unit, size] of units) { const n = Math.floor(rest / size); rest -= n * size; if (n) parts.push(n + unit); }
    return parts.slice(0, 2).join(" ") || "0s";
  }
  const percent = (value) => value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
  const perWeek = (value) => value === null || value === undefined ? "—" : value.toFixed(1) + "/week";
  const moment = (iso) => iso ? iso.slice(0, 16).replace("T", " ") : "—";
  const day = (iso) => iso.slice(0, 10);
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  // ---- state in the URL ----
  const DEFAULTS = { view: "overview", service: "", environment: "production", days: "30", since: "", until: "",
    bucket: "week", profile: "", label: "" };
  const VIEWS = ["overview", "deployments", "failures", "changes", "incidents"];

  function readState() {
    const query = new URLSearchParams(location.search);
    const state = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS)) if (key !== "label" && query.get(key)) state[key] = query.get(key);
    state.label = query.getAll("label").join(", ");
    if (state.since) state.days = "";
    if (!VIEWS.includes(state.view)) state.view = "overview";
    return state;
  }
  function labelsOf(state) { return state.label.split(",").map((part) => part.trim()).filter((part) => part.includes("=")); }
  function stateQuery(state) {
    const query = new URLSearchParams();
    for (const key of ["view", "service", "environment", "days", "since", "until", "bucket", "profile"]) {
      if (state[key] && state[key] !== DEFAULTS[key]) query.set(key, state[key]);
    }
    for (const label of labelsOf(state)) query.append("label", label);
    return query;
  }
  const href = (state) => { const q = stateQuery(state).toString(); return q ? "?" + q : location.pathname; };

  // The report's parameters, exactly as /metrics/dora takes them.
  function reportParams(state, extra) {
    const params = new URLSearchParams();
    if (state.since) { params.set("since", state.since); if (state.until) params.set("until", state.until); }
    else params.set("days", state.days || DEFAULTS.days);
    params.set("environment", state.environment || DEFAULTS.environment);
    if (state.service) params.set("service", state.service);
    if (state.profile) params.set("profile", state.profile);
    for (const label of labelsOf(state)) params.append("label", label);
    for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
    return params;
  }

  // ---- API access; the token lives in sessionStorage (this tab only, never the URL or disk) ----
  const TOKEN_KEY = "metrichub.token";
  const readsNeedToken = document.querySelector('meta[name="metrichub-auth"]').content === "all";
  class TokenNeeded extends Error {}

  function askForToken(message) {
    $("login").hidden = false; $("forget").hidden = true;
    $("overview").hidden = true; $("drill").hidden = true;
    $("status").className = message ? "status error" : "status";
    $("status").textContent = message || "This MetricHub needs a bearer token to read its data.";
    $("token").focus();
  }

  async function api(path, params) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    else if (readsNeedToken) {  // no request without a token
      if ($("login").hidden) askForToken("");
      throw new TokenNeeded();
    }
    const response = await fetch(path + (params ? "?" + params.toString() : ""), { headers });
    if (readsNeedToken && (response.status === 401 || response.status === 403)) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken("The token was refused (" + response.status + "); enter another.");
      throw new TokenNeeded();
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : response.statusText);
    return body.data;
  }

  // ---- the five metrics: how to read, show and link each ----
  const METRICS = [
    { key: "deployment_frequency", title: "Deployment frequency", drill: "deployments", better: "up", notes: "deployment frequency",
      value: (r) => r.deployment_frequency.count ? r.deployment_frequency.per_week : null, format: perWeek,
      count: (r) => r.deployment_frequency.count,
      basis: (r) => plural(r.deployment_frequency.count, "deployment") + " · band " + (r.deployment_frequency.band || "—") +
        " · " + (r.deployment_frequency.deploy_days_per_week_median ?? "—") + " deploy days/week (median)",
      link: (r) => plural(r.deployment_frequency.count, "deployment") + " →",
      level: (r) => r.deployment_frequency.level, spark: (p) => p.deployment_frequency.count },
    { key: "lead_time", title: "Lead time for changes", drill: "changes", better: "down", notes: "lead time",
      value: (r) => r.lead_time.median_seconds, format: duration, count: (r) => r.lead_time.count,
      basis: (r) => "median · p90 " + duration(r.lead_time.p90_seconds) + " · " + plural(r.lead_time.count, "change"),
      link: (r) => plural(r.lead_time.count, "change") + ", slowest first →",
      level: (r) => r.lead_time.level, spark: (p) => p.lead_time.median_seconds },
    { key: "change_failure_rate", title: "Change failure rate", drill: "failures", better: "down", notes: "change failure rate",
      value: (r) => r.change_failure_rate.value, format: percent, count: (r) => r.change_failure_rate.failed,
      basis: (r) => r.change_failure_rate.failed + " of " + plural(r.change_failure_rate.total, "deployment") + " caused a failure",
      link: (r) => plural(r.change_failure_rate.failed, "failed deployment") + " →",
      level: (r) => r.change_failure_rate.level, spark: (p) => p.change_failure_rate.value },
    { key: "failed_deployment_recovery_time", title: "Failed-deployment recovery", drill: "incidents", better: "down",
      notes: "failed-deployment recovery time",
      value: (r) => r.failed_deployment_recovery_time.median_seconds, format: duration,
      count: (r) => r.failed_deployment_recovery_time.count,
      basis: (r) => "median · " + plural(r.failed_deployment_recovery_time.count, "incident") + " · " +
        r.failed_deployment_recovery_time.open + " open",
      link: (r) => plural(r.time_to_restore.count + r.time_to_restore.open, "incident") + " →",
      level: (r) => r.failed_deployment_recovery_time.level, spark: (p) => p.failed_deployment_recovery_time.median_seconds },
    { key: "rework_rate", title: "Rework rate", drill: "deployments", better: "down", notes: "rework",
      value: (r) => r.rework_rate.value, format: percent, count: (r) => r.rework_rate.rework,
      basis: (r) => r.rework_rate.rework + " of " + plural(r.rework_rate.total, "deployment") + " · no published levels",
      link: () => "deployments →", level: () => undefined, spark: (p) => p.rework_rate.value },
  ];

  function levelBadge(level) {
    if (level === undefined) return el("span", { class: "level", "data-role": "level" }, "no benchmark");
    return el("span", { class: "level " + (level || ""), "data-role": "level" }, level || "not rated");
  }

  // ---- overview ----
  let generation = 0;
  let lastTrend = null, lastProfile = null, lastServices = [];
  const known = { service: new Set([""]), environment: new Set(["production"]), profile: new Set([""]) };
  let profiles = null;

  function ensureOption(id, value, text) {
    if (!value || known[id].has(value)) return;
    known[id].add(value);
    $(id).append(el("option", { value }, text || value));
  }

  function windowDays(report) {
    return Math.round((Date.parse(report.window.until) - Date.parse(report.window.since)) / 86400000);
  }

  function card(metric, report, state) {
    const value = metric.value(report);
    const node = el("article", { class: "card", "data-metric": metric.key });
    node.append(el("h2", {}, metric.title));
    const shown = value === null ? el("div", { class: "value empty", "data-role": "value" }, "not enough data")
      : el("div", { class: "value", "data-role": "value" }, metric.format(value));
    node.append(shown, el("div", { class: "basis", "data-role": "basis" }, metric.basis(report)));
    node.append(el("div", { class: "row" }, levelBadge(metric.level(report)),
      el("span", { class: "delta", "data-role": "delta" }, "")));
    node.append(el("div", { "data-role": "spark" }));
    for (const note of report.notes.filter((n) => n.startsWith(metric.notes))) {
      node.append(el("div", { class: "note", "data-role": "note" }, note));
    }
    const link = el("a", { class: "drill", href: href({ ...state, view: metric.drill }), "data-drill": metric.drill },
      metric.link(report));
    link.addEventListener("click", follow);
    node.append(link);
    return node;
  }

  function renderReport(report, state) {
    document.body.dataset.window = report.window.since + "|" + report.window.until;  // the exact window shown
    $("cards").replaceChildren(...METRICS.map((metric) => card(metric, report, state)));
    $("notes").replaceChildren(...(report.notes.length ? report.notes : ["none"]).map((note) => el("li", {}, note)));
    const overall = report.overall.level;
    $("status").className = "status";
    $("status").textContent = (state.service ? "Service " + state.service + " · " : "All services · ") +
      report.filters.environment + " · " + moment(report.window.since) + " → " + moment(report.window.until) + " UTC · " +
      "profile " + report.profile + " · overall " + (overall || "not rated");
  }

  function renderDeltas(report, previous) {
    const days = windowDays(report);
    for (const metric of METRICS) {
      const slot = document.querySelector('[data-metric="' + metric.key + '"] [data-role="delta"]');
      if (!slot) continue;
      const now = metric.value(report), before = metric.value(previous);
      if (now === null || before === null) { slot.textContent = "no figure for the previous " + days + " days"; continue; }
      const diff = now - before;
      if (Math.abs(diff) < 1e-9) { slot.textContent = "→ same as the previous " + days + " days"; continue; }
      const figure = metric.format === duration ? duration(Math.abs(diff))
        : metric.format === percent ? (Math.abs(diff) * 100).toFixed(1) + " pts" : perWeek(Math.abs(diff));
      const good = (diff > 0) === (metric.better === "up");
      slot.className = "delta " + (good ? "better" : "worse");
      slot.textContent = (diff > 0 ? "↑ " : "↓ ") + figure + " vs previous " + days + " days" + (good ? " (better)" : " (worse)");
    }
  }

  function sparkline(values) {
    const width = 200, height = 34, pad = 3;
    const svg = svgEl("svg", { class: "spark", viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none",
      "aria-hidden": "true" });
    const present = values.filter((v) => v !== null && v !== undefined);
    if (!present.length) return svg;
    const max = Math.max(...present), min = Math.min(0, ...present), span = max - min || 1;
    const x = (i) => values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1);
    const y = (v) => height - pad - ((v - min) / span) * (height - 2 * pad);
    let run = [];
    const flush = () => {
      if (run.length > 1) svg.append(svgEl("polyline", { points: run.join(" ") }));
      else if (run.length === 1) { const [cx, cy] = run[0].split(","); svg.append(svgEl("circle", { cx, cy, r: 1.8 })); }
      run = [];
    };
    values.forEach((v, i) => { if (v === null || v === undefined) flush(); else run.push(x(i).toFixed(1) + "," + y(v).toFixed(1)); });
    flush();
    return svg;
  }

  function renderSparks(trend) {
    for (const metric of METRICS) {
      const slot = document.querySelector('[data-metric="' + metric.key + '"] [data-role="spark"]');
      if (slot) slot.replaceChildren(sparkline(trend.points.map(metric.spark)));
    }
  }

  // ---- trend charts: SVG drawn here, gaps for empty buckets, profile bounds as reference lines ----
  const SCALE_TICKS = [60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 180 * 86400, 365 * 86400];

  function chart(spec) {
    const { title, points, series, log, format, refs, bars, bucket, unit } = spec;
    const section = el("section", { "data-chart": spec.key });
    section.append(el("h2", {}, title));
    const svg = svgEl("svg", { class: "chart", role: "img", "aria-label": title + " per " + bucket + (log ? ", log scale" : "") });
    section.append(svg);
    const legend = el("div", { class: "legend" });
    series.forEach((s, i) => legend.append(el("span", { class: "k" + i }, s.name)));
    if (refs.length) legend.append(el("span", {}, "dashed: " + refs.map((r) => r.level + " " + r.label).join(" · ")));
    if (log) legend.append(el("span", {}, "log scale"));
    legend.append(el("span", {}, "shaded: no data in the " + bucket));
    section.append(legend);
    // The figures as a table: for screen readers, and for anyone who wants the numbers.
    const head = el("tr", {}, el("th", {}, bucket));
    series.forEach((s) => head.append(el("th", { class: "num" }, s.name)));
    const rows = points.map((p, i) => {
      const row = el("tr", {}, el("td", {}, day(p.window.since)));
      series.forEach((s) => row.append(el("td", { class: "num" }, s.values[i] === null ? "no data" : format(s.values[i]))));
      return row;
    });
    section.append(el("details", {}, el("summary", {}, "Figures"),
      el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)))));
    section.draw = () => drawChart(svg, spec);
    return section;
  }

  function drawChart(svg, spec) {
    const { points, series, log, format, refs, bars, unit } = spec;
    svg.replaceChildren();
    const width = Math.max(280, svg.clientWidth || 600), height = 210;
    const left = 62, right = 10, top = 10, bottom = 24, plotW = width - left - right, plotH = height - top - bottom;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    const values = series.flatMap((s) => s.values).filter((v) => v !== null);
    const refValues = refs.map((r) => r.value);
    let lo, hi;
    if (log) {
      const all = [...values, ...refValues].filter((v) => v > 0);
      lo = Math.min(...all, 3600) / 1.5; hi = Math.max(...all, 86400) * 1.5;
    } else {
      lo = 0; hi = Math.max(...values, ...refValues, bars ? 1 : 0.01) * 1.1;
    }
    const y = (v) => {
      if (log) return top + plotH - ((Math.log(Math.max(v, lo)) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * plotH;
      return top + plotH - ((v - lo) / (hi - lo)) * plotH;
    };
    const n = Math.max(1, points.length), w = plotW / n, x = (i) => left + (i + 0.5) * w;
    // axes, ticks
    const ticks = log ? SCALE_TICKS.filter((t) => t >= lo && t <= hi) : niceTicks(hi, bars);
    for (const t of ticks) {
      svg.append(svgEl("line", { class: "grid", x1: left, x2: width - right, y1: y(t), y2: y(t) }));
      svg.append(svgEl("text", { x: left - 6, y: y(t) + 4, "text-anchor": "end" }, format(t)));
    }
    svg.append(svgEl("line", { class: "axis", x1: left, x2: left, y1: top, y2: top + plotH }));
    svg.append(svgEl("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
    const every = Math.max(1, Math.ceil(64 / w));
    points.forEach((p, i) => {
      if (i % every === 0) {
        const text = spec.bucket === "month" ? p.window.since.slice(0, 7) : p.window.since.slice(5, 10);
        svg.append(svgEl("text", { x: x(i), y: height - 6, "text-anchor": "middle" }, text));
      }
    });
    // empty buckets: shaded, never drawn as zero
    const empty = points.map((_, i) => series.every((s) => s.values[i] === null));
    empty.forEach((isEmpty, i) => {
      if (!isEmpty) return;
      const gap = svgEl("rect", { class: "gap", x: left + i * w, y: top, width: Math.max(1, w), height: plotH });
      gap.append(svgEl("title", {}, day(points[i].window.since) + ": no data"));
      svg.append(gap);
    });
    for (const ref of refs) {
      if (ref.value < lo || ref.value > hi) continue;
      const tone = ref.level.split(",")[0];
      svg.append(svgEl("line", { class: "ref " + tone, x1: left, x2: width - right, y1: y(ref.value), y2: y(ref.value) }));
      svg.append(svgEl("text", { class: "ref-label " + tone, x: width - right - 2, y: y(ref.value) - 3, "text-anchor": "end" },
        ref.level + " " + ref.label));
    }
    series.forEach((s, k) => {
      if (bars) {
        s.values.forEach((v, i) => {
          if (v === null) return;
          const bar = svgEl("rect", { class: "bar", x: x(i) - Math.max(1, w - 4) / 2, width: Math.max(1, w - 4),
            y: y(v), height: Math.max(0, top + plotH - y(v)) });
          bar.append(svgEl("title", {}, day(points[i].window.since) + ": " + format(v) + " " + unit));
          svg.append(bar);
          if (w >= 26 && v) svg.append(svgEl("text", { x: x(i), y: y(v) - 4, "text-anchor": "middle" }, format(v)));
        });
        return;
      }
      let run = [];
      const flush = () => { if (run.length > 1) svg.append(svgEl("polyline", { class: "line s" + k, points: run.join(" ") })); run = []; };
      s.values.forEach((v, i) => { if (v === null) flush(); else run.push(x(i).toFixed(1) + "," + y(v).toFixed(1)); });
      flush();
      s.values.forEach((v, i) => {
        if (v === null) return;
        const dot = svgEl("circle", { class: "dot s" + k, cx: x(i), cy: y(v), r: w >= 10 ? 3 : 2 });
        dot.append(svgEl("title", {}, day(points[i].window.since) + ": " + s.name + " " + format(v)));
        svg.append(dot);
      });
    });
  }

  // 0 and a few round steps up to max (whole numbers for counts).
  function niceTicks(max, whole) {
    const raw = max / 4, power = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
    if (whole) step = Math.max(1, Math.round(step));
    const ticks = [];
    for (let t = 0; t <= max + 1e-9; t += step) ticks.push(t);
    return ticks;
  }

  // One reference line per distinct bound: levels published with the same bound share it ("high, medium < 1d").
  function bounds(list, format) {
    const lines = [];
    for (const b of list) {
      const same = lines.find((line) => line.value === b.value && line.strict === b.strict);
      if (same) { same.level += ", " + b.level; continue; }
      lines.push({ level: b.level, value: b.value, strict: b.strict, label: (b.strict ? "< " : "≤ ") + format(b.value) });
    }
    return lines;
  }

  function renderCharts(trend, profile) {
    const points = trend.points, bucket = trend.bucket;
    const nul = (v) => v === null || v === undefined ? null : v;
    const specs = [
      { key: "deployments", title: "Deployments per " + bucket, bars: true, unit: "deployments", format: (v) => String(Math.round(v)),
        series: [{ name: "deployments", values: points.map((p) => p.deployment_frequency.count) }], refs: [] },
      { key: "lead_time", title: "Lead time for changes", log: true, format: duration,
        series: [{ name: "median", values: points.map((p) => p.lead_time.count ? nul(p.lead_time.median_seconds) : null) },
                 { name: "p90", values: points.map((p) => p.lead_time.count ? nul(p.lead_time.p90_seconds) : null) }],
        refs: profile ? bounds(profile.lead_time_seconds, duration) : [] },
      { key: "change_failure_rate", title: "Change failure rate", format: percent,
        series: [{ name: "failure rate", values: points.map((p) => nul(p.change_failure_rate.value)) }],
        refs: profile ? bounds(profile.change_failure_rate, percent) : [] },
      { key: "recovery", title: "Failed-deployment recovery time", log: true, format: duration,
        series: [{ name: "median", values: points.map((p) => p.failed_deployment_recovery_time.count
          ? nul(p.failed_deployment_recovery_time.median_seconds) : null) }],
        refs: profile ? bounds(profile.recovery_time_seconds, duration) : [] },
    ];
    const sections = specs.map((spec) => chart({ ...spec, points, bucket }));
    $("charts").replaceChildren(...sections);
    for (const section of sections) section.draw();
  }

  // ---- services side by side ----
  const SERVICE_COLUMNS = [
    { key: "service", title: "Service", text: (r) => r.filters.service, sort: (r) => r.filters.service },
    { key: "environment", title: "Environment", text: (r) => r.filters.environment, sort: (r) => r.filters.environment },
    { key: "frequency", title: "Deploys/week", num: true, text: (r) => perWeek(r.deployment_frequency.per_week),
      level: (r) => r.deployment_frequency.level, sort: (r) => r.deployment_frequency.per_week },
    { key: "lead", title: "Lead time (median)", num: true, text: (r) => duration(r.lead_time.median_seconds),
      level: (r) => r.lead_time.level, sort: (r) => r.lead_time.median_seconds },
    { key: "cfr", title: "Change failure rate", num: true, text: (r) => percent(r.change_failure_rate.value),
      level: (r) => r.change_failure_rate.level, sort: (r) => r.change_failure_rate.value },
    { key: "recovery", title: "Recovery (median)", num: true, text: (r) => duration(r.failed_deployment_recovery_time.median_seconds),
      level: (r) => r.failed_deployment_recovery_time.level, sort: (r) => r.failed_deployment_recovery_time.median_seconds },
    { key: "overall", title: "Overall", level: (r) => r.overall.level,
      sort: (r) => ["elite", "high", "medium", "low"].indexOf(r.overall.level ?? "") },
  ];
  let serviceSort = { key: "service", direction: 1 };

  function renderServices(reports, state) {
    lastServices = reports;
    const head = el("tr");
    for (const column of SERVICE_COLUMNS) {
      const th = el("th", { class: column.num ? "num" : undefined, scope: "col",
        "aria-sort": serviceSort.key === column.key ? (serviceSort.direction > 0 ? "ascending" : "descending") : "none" });
      const button = el("button", { type: "button" }, column.title);
      button.addEventListener("click", () => {
        serviceSort = { key: column.key, direction: serviceSort.key === column.key ? -serviceSort.direction : 1 };
        renderServices(lastServices, state);
      });
      th.append(button); head.append(th);
    }
    const column = SERVICE_COLUMNS.find((c) => c.key === serviceSort.key);
    const sorted = [...reports].sort((a, b) => {
      const x = column.sort(a), y = column.sort(b);
      if (x === null || x === undefined || x === -1) return 1;
      if (y === null || y === undefined || y === -1) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * serviceSort.direction;
    });
    const rows = sorted.map((report) => {
      const row = el("tr", { "data-service": report.filters.service, "data-environment": report.filters.environment });
      for (const c of SERVICE_COLUMNS) {
        const cell = el("td", { class: c.num ? "num" : undefined });
        if (c.key === "service") {
          const link = el("a", { href: href({ ...state, view: "overview", service: report.filters.service,
            environment: report.filters.environment }) }, c.text(report));
          link.addEventListener("click", follow);
          cell.append(link);
        } else if (c.text) cell.append(c.text(report));
        if (c.level) cell.append(c.text ? " " : "", levelBadge(c.level(report)));
        row.append(cell);
      }
      return row;
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: SERVICE_COLUMNS.length }, "No service deployed in this window.")));
    $("services").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }

  // Requests started together: when one fails first, the others' failures are already reported.
  const started = (promise) => { promise.catch(() => {}); return promise; };

  async function loadOverview(state, gen) {
    // The report first, alone: its figures are the first paint, and a refused token is sent once only.
    const report = await api(API, reportParams(state));
    if (gen !== generation) return;
    renderReport(report, state);
    document.body.dataset.figures = "filled";
    if (performance.mark) performance.mark("metrichub:figures");
    const trendP = started(api(API + "/trend", reportParams(state, { bucket: state.bucket })));
    const servicesParams = reportParams(state, { limit: "1000" });
    servicesParams.delete("environment");
    const servicesP = started(api(API + "/services", servicesParams));
    const profilesP = started(profiles ? Promise.resolve(profiles) : api(API + "/profiles"));
    const previousP = started(api(API, reportParams({ ...state, days: "", since: previousSince(report), until: report.window.since })));
    profiles = await profilesP;
    for (const profile of profiles) ensureOption("profile", profile.name, profile.name + (profile.default ? " (default)" : ""));
    lastProfile = profiles.find((p) => p.name === report.profile) || null;
    const [trend, services, previous] = await Promise.all([trendP, servicesP, previousP]);
    if (gen !== generation) return;
    lastTrend = trend;
    renderSparks(trend);
    renderCharts(trend, lastProfile);
    renderDeltas(report, previous);
    for (const row of services.items) {
      ensureOption("service", row.filters.service); ensureOption("environment", row.filters.environment);
    }
    renderServices(services.items, state);
  }

  function previousSince(report) {
    const since = Date.parse(report.window.since), until = Date.parse(report.window.until);
    return new Date(since - (until - since)).toISOString();
  }

  // ---- drill-down lists ----
  const DRILLS = {
    deployments: { title: "Deployments", summary: (page) => page.total + " deployments in the window (any status); " +
        "those marked success count in deployment frequency",
      columns: ["Deployed (UTC)", "Service", "Deployment", "Status", "Changes (first shipped / listed)", "Lead time (median)",
        "Incidents attributed", "Counts as"],
      row: (d) => [moment(d.deployed_at), d.service, link(d.id, d.url), tag(d.status, d.status),
        d.changes_first_shipped + " / " + d.changes, duration(d.lead_time_median_seconds), incidentList(d.incidents),
        flags(d)] },
    failures: { title: "Failed deployments", summary: (page) => page.total + " deployments of the window caused a failure",
      columns: ["Deployed (UTC)", "Service", "Deployment", "Incidents", "Started (UTC)", "Attributed by", "Recovery"],
      row: (d) => [moment(d.deployed_at), d.service, link(d.id, d.url), incidentList(d.incidents),
        d.incidents.map((i) => moment(i.started_at)).join(", "),
        d.incidents.map((i) => i.attribution === "time" ? "time (last deployment before)" : "caused_by").join(", "),
        d.incidents.map((i) => i.resolved_at === null ? "open" : duration(i.recovery_seconds)).join(", ")] },
    changes: { title: "Changes, slowest first", summary: (page) => page.total + " changes shipped first in the window",
      columns: ["Change", "Service", "Committed (UTC)", "Deployed (UTC)", "Lead time", "Deployment"],
      row: (c) => [link(c.id, c.url), c.service, moment(c.committed_at), moment(c.deployed_at), duration(c.lead_time_seconds),
        c.deployment_id] },
    incidents: { title: "Incidents", summary: (page) => page.total + " incidents started in the window",
      columns: ["Incident", "Service", "Started (UTC)", "Resolved (UTC)", "Attributed to", "Recovery", "Time to restore"],
      row: (i) => [link(i.id, i.url, i.title), i.service, moment(i.started_at), moment(i.resolved_at),
        i.deployment_id ? i.deployment_id + (i.attribution === "time" ? " (by time)" : " (caused_by)") :
          (i.deployment_related ? "none found" : "not deployment-related"),
        duration(i.recovery_seconds), duration(i.restore_seconds)] },
  };

  function link(text, url, title) {
    if (!url || !/^https?:\/\//.test(url)) return title ? text + " · " + title : text;
    return el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, text + (title ? " · " + title : "") + " ↗");
  }
  const tag = (text, kind) => el("span", { class: "tag " + kind }, text);
  function incidentList(incidents) {
    if (!incidents.length) return "—";
    const list = el("span");
    for (const i of incidents) list.append(el("span", { class: "tag" }, i.id + (i.resolved_at ? "" : " (open)")), " ");
    return list;
  }
  function flags(d) {
    const list = el("span");
    if (d.counted) list.append(tag("counted", "success"));
    if (d.failed) list.append(tag("failed", "failed"));
    if (d.rework) list.append(tag("rework", ""));
    return list.childNodes && list.childNodes.length === 0 ? "—" : list;
  }

  let drillCursor = null;
  async function loadDrill(state, gen, cursor) {
    const spec = DRILLS[state.view];
    const params = reportParams(state, { limit: "200" });
    if (cursor) params.set("cursor", cursor);
    const page = await api(API + "/" + state.view, params);
    if (gen !== generation) return;
    $("drill-title").textContent = spec.title + " · " + (state.service || "all services") + " · " + (state.environment || "production") +
      (labelsOf(state).length ? " · " + labelsOf(state).join(", ") : "");
    $("drill-summary").textContent = spec.summary(page) + " · " + moment(page.window.since) + " → " + moment(page.window.until) + " UTC";
    $("status").className = "status"; $("status").textContent = "";
    const rows = page.items.map((item) => {
      const row = el("tr", { "data-id": item.id, "data-source": item.source });
      for (const cell of spec.row(item)) row.append(el("td", {}, cell));
      return row;
    });
    if (!cursor) {
      const head = el("tr", {}, ...spec.columns.map((c) => el("th", { scope: "col" }, c)));
      $("drill-table").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
      if (!rows.length) $("drill-table").append(el("tbody", {}, el("tr", {}, el("td", { colspan: spec.columns.length },
        "Nothing in this window."))));
    } else {
      $("drill-table").querySelector("tbody").append(...rows);
    }
    document.body.dataset.window = page.window.since + "|" + page.window.until;
    drillCursor = page.next_cursor;
    $("more").hidden = !drillCursor;
    document.body.dataset.ready = state.view;
  }

  // ---- controls, navigation ----
  function syncControls(state) {
    ensureOption("service", state.service); ensureOption("environment", state.environment); ensureOption("profile", state.profile);
    $("service").value = state.service; $("environment").value = state.environment;
    const custom = Boolean(state.since);
    if (!custom) ensureOption("window", state.days, state.days + " days");
    $("window").value = custom ? "custom" : state.days;
    $("custom-window").hidden = !custom;
    $("since").value = state.since ? state.since.slice(0, 10) : ""; $("until").value = state.until ? state.until.slice(0, 10) : "";
    $("bucket").value = state.bucket; $("profile").value = state.profile; $("label").value = state.label;
    const crumbs = [];
    if (state.view !== "overview" || state.service) {
      const back = el("a", { href: href({ ...state, view: "overview", service: "" }) }, "← All services");
      back.addEventListener("click", follow);
      crumbs.push(back);
      if (state.view !== "overview" && state.service) {
        const service = el("a", { href: href({ ...state, view: "overview" }) }, "← " + state.service);
        service.addEventListener("click", follow);
        crumbs.push(" ", service);
      }
    }
    $("crumbs").replaceChildren(...crumbs);
  }
  known.window = new Set(["7", "14", "30", "90", "180", "365", "custom"]);

  function controlsState() {
    const state = { ...readState() };
    state.service = $("service").value; state.environment = $("environment").value || DEFAULTS.environment;
    state.bucket = $("bucket").value; state.profile = $("profile").value; state.label = $("label").value.trim();
    if ($("window").value === "custom") {
      const since = $("since").value, until = $("until").value;
      state.days = since ? "" : DEFAULTS.days;
      state.since = since; state.until = since ? until : "";
    } else { state.days = $("window").value; state.since = ""; state.until = ""; }
    return state;
  }

  function follow(event) {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button) return;  // new tab: let the browser do it
    event.preventDefault();
    history.pushState(null, "", event.currentTarget.getAttribute("href"));
    render();
  }

  function apply() {
    const state = controlsState();
    if ($("window").value === "custom" && !state.since) { $("custom-window").hidden = false; return; }
    history.pushState(null, "", href(state));
    render();
  }

  async function render() {
    const state = readState();
    const gen = ++generation;
    syncControls(state);
    document.body.dataset.ready = "";
    delete document.body.dataset.figures;
    const overview = state.view === "overview";
    $("overview").hidden = !overview; $("drill").hidden = overview;
    $("status").className = "status"; $("status").textContent = "Loading…";
    try {
      if (overview) { await loadOverview(state, gen); if (gen === generation) document.body.dataset.ready = "overview"; }
      else await loadDrill(state, gen, null);
    } catch (error) {
      if (error instanceof TokenNeeded) return;
      $("status").className = "status error"; $("status").textContent = String(error.message || error);
      document.body.dataset.ready = "error";
    }
  }

  function start() {
    if (readsNeedToken && !sessionStorage.getItem(TOKEN_KEY)) { askForToken(""); return; }
    $("login").hidden = true; $("forget").hidden = !readsNeedToken;
    render();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (token) { sessionStorage.setItem(TOKEN_KEY, token); start(); }
  });
  $("forget").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); askForToken(""); });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  for (const id of ["service", "environment", "window", "since", "until", "bucket", "profile", "label"]) $(id).addEventListener("change", apply);
  $("more").addEventListener("click", () => {
    if (drillCursor) loadDrill(readState(), generation, drillCursor).catch((error) => {
      if (!(error instanceof TokenNeeded)) { $("status").className = "status error"; $("status").textContent = String(error.message || error); }
    });
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { for (const section of $("charts").children) if (section.draw) section.draw(); }, 150);
  });
  window.addEventListener("popstate", render);
  start();
})();
