// The Farm dashboard: polls the coordinator's /api endpoints (builds every second, stats and workers every five) and
// redraws. No framework and no build step, on purpose: the page ships inside the coordinator.
"use strict";

const state = { selected: null, pinned: false, logsStep: null, lanes: false, timeline: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "style") e.setAttribute("style", v);
    else if (k === "title") e.title = v;
    else if (k === "onclick") e.addEventListener("click", v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// A coordinator with auth wants a token (a read token will do) on every /api request. It comes from the page's
// fragment (/#token=farm_...: a fragment never reaches the server, so no log holds it) or is asked for on the first
// 401, and lives in this tab's sessionStorage only.
const fragmentToken = new URLSearchParams(location.hash.slice(1)).get("token");
if (fragmentToken) {
  sessionStorage.setItem("farmToken", fragmentToken);
  history.replaceState(null, "", location.pathname + location.search);
}

async function authFetch(url) {
  const token = sessionStorage.getItem("farmToken");
  const r = await fetch(url, { cache: "no-store", headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (r.status === 401 && !authFetch.asked) {
    authFetch.asked = true;
    const given = prompt("This farm needs a token (farm-coordinator token create --tenant NAME --role read):");
    if (given) {
      sessionStorage.setItem("farmToken", given.trim());
      authFetch.asked = false;
      return authFetch(url);
    }
  }
  return r;
}

async function json(url) {
  const r = await authFetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function seconds(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function ago(iso) {
  const s = (Date.now() - Date.parse(iso)) / 1000;
  return s < 1 ? "now" : `${Math.round(s)} s ago`;
}

async function refreshBuilds() {
  const builds = await json("/api/builds");
  const body = $("builds").tBodies[0];
  body.replaceChildren(...builds.map((b) => {
    const end = b.finishedAt ? Date.parse(b.finishedAt) : Date.now();
    const row = el("tr", { "data-build-id": b.buildId, "data-status": b.status, class: b.buildId === state.selected ? "selected" : "",
      onclick: () => { state.selected = b.buildId; state.pinned = true; state.logsStep = null; $("logs").hidden = true; refresh(); } },
      el("td", {}, el("span", { class: `badge ${b.status}` }, b.status)),
      el("td", { title: b.buildId }, b.buildId.slice(0, 8)),
      el("td", { class: "tags", title: b.tags.join(", ") }, b.tags.join(", ") || "–"),
      el("td", {}, `${b.stepsDone}/${b.layerSteps ?? "?"}`),
      el("td", {}, b.stepsCached),
      el("td", {}, seconds(end - Date.parse(b.submittedAt))));
    return row;
  }));
  $("no-builds").hidden = builds.length > 0;
  $("stat-running").textContent = builds.filter((b) => b.status === "running" || b.status === "queued").length;
  if (!state.pinned && builds.length) state.selected = builds[0].buildId;
}

// Why a step ran, in full: its reasons with the paths or names each one lists.
function explain(x) {
  const lines = [`rebuilt: ${x.summary}`];
  for (const r of x.reasons || []) {
    lines.push(`- ${r.kind}: ${r.message}`);
    for (const kind of ["changed", "added", "removed"]) {
      const count = r[`${kind}Count`];
      if (!count) continue;
      lines.push(`    ${kind} (${count}): ${r[kind].join(", ")}${count > r[kind].length ? ", ..." : ""}`);
    }
  }
  if (x.previousBuild) lines.push(`compared with build ${x.previousBuild}${x.previousStep ? ", step " + x.previousStep : ""}`);
  return lines.join("\n");
}

// A step's platform as the timeline shows it: "linux/arm64, emulated"; nothing until it finished.
function platformText(s) {
  if (!s.platform) return "";
  return s.platform + (s.emulated ? ", emulated" : "");
}

function stepBar(s, pct) {
  const stepEnd = s.finished ?? new Date().toISOString();
  const bar = el("div", { class: "bar" + (s.critical ? " critical" : ""), "data-step-id": s.stepId, "data-critical": String(!!s.critical),
    style: `left:${pct(s.started)};width:calc(${pct(stepEnd)} - ${pct(s.started)})` });
  const total = Math.max(Date.parse(stepEnd) - Date.parse(s.started), 1);
  for (const p of s.phases) {
    const width = 100 * (Date.parse(p.end) - Date.parse(p.start)) / total;
    bar.append(el("div", { class: `seg ${p.phase}`, "data-phase": p.phase, style: `width:${width.toFixed(3)}%`, title: `${p.phase} ${seconds(Date.parse(p.end) - Date.parse(p.start))}` }));
  }
  bar.title = `${s.stepId} ${s.display}\n${s.status}${s.worker ? " on " + s.worker : ""}${platformText(s) ? " (" + platformText(s) + ")" : ""}, ${seconds(total)}` + (s.layerSize ? `, ${bytes(s.layerSize)}` : "")
    + (s.critical ? "\non the critical path" : "") + (s.explanation ? `\nrebuilt: ${s.explanation.summary}` : "");
  return bar;
}

async function refreshTimeline() {
  if (!state.selected) return;
  const t = await json(`/api/builds/${state.selected}`);
  state.timeline = t;
  const b = t.build;
  $("timeline-title").textContent = `${b.buildId.slice(0, 8)} · ${b.status}` + (b.traceId ? ` · trace ${b.traceId}` : "");
  const start = Date.parse(b.submittedAt);
  const end = Math.max(b.finishedAt ? Date.parse(b.finishedAt) : Date.now(), ...t.steps.map((s) => s.finished ? Date.parse(s.finished) : Date.now()));
  const span = Math.max(end - start, 1);
  const pct = (at) => `${(100 * (Date.parse(at) - start) / span).toFixed(3)}%`;
  const open = (s) => () => { state.logsStep = s.stepId; refreshLogs(); };
  let rows;
  if (state.lanes) {
    // One lane per worker (cached steps in their own): where the time went on each machine.
    const lanes = new Map();
    for (const s of t.steps) {
      const lane = s.cached ? "cached" : (s.worker || "waiting");
      if (!lanes.has(lane)) lanes.set(lane, []);
      lanes.get(lane).push(s);
    }
    rows = [...lanes.entries()].map(([lane, steps]) => {
      const track = el("div", { class: "track" });
      for (const s of steps) {
        const bar = stepBar(s, pct);
        bar.addEventListener("click", open(s));
        track.append(bar);
      }
      return el("div", { class: "step lane", "data-lane": lane, "data-status": lane === "cached" ? "cached" : "built" },
        el("div", { class: "name", title: lane }, lane),
        track,
        el("div", { class: "who" }, `${steps.length} step${steps.length === 1 ? "" : "s"}` + (steps.some((s) => s.critical) ? " · critical" : "")));
    });
  } else {
    rows = t.steps.map((s) => el("div", { class: "step" + (s.critical ? " critical" : ""), "data-step-id": s.stepId, "data-status": s.status, "data-worker": s.worker ?? "",
      "data-critical": String(!!s.critical), "data-platform": s.platform ?? "", "data-emulated": String(!!s.emulated), onclick: open(s) },
      el("div", { class: "name", title: s.explanation ? `${s.display}\n${explain(s.explanation)}` : s.display },
        el("span", { class: "id" }, s.stepId), s.display,
        s.explanation ? el("div", { class: "why", "data-explanation": s.explanation.summary }, `rebuilt: ${s.explanation.summary}`) : null),
      el("div", { class: "track" }, stepBar(s, pct)),
      el("div", { class: "who" }, el("span", { class: `tag ${s.status}` }, s.status), s.worker ?? "",
        platformText(s) ? el("span", { class: "platform", "data-platform": s.platform }, " " + platformText(s)) : null)));
  }
  const box = $("timeline");
  box.replaceChildren(...rows);
  if (t.error) box.append(el("p", { class: "error" }, t.error));
  if (!rows.length) box.append(el("p", { class: "muted" }, b.status === "queued" ? "Queued." : "No layer step yet."));
  if (state.logsStep) await refreshLogs();
}

async function refreshLogs() {
  const r = await authFetch(`/api/builds/${state.selected}/logs?step=${encodeURIComponent(state.logsStep)}`);
  $("logs-step").textContent = state.logsStep;
  const step = state.timeline?.steps.find((s) => s.stepId === state.logsStep);
  $("logs-why").textContent = step?.explanation ? explain(step.explanation) : step?.cached ? "CACHED" : "";
  $("logs-why").hidden = !$("logs-why").textContent;
  $("logs-text").textContent = (await r.text()) || "(no output)";
  $("logs").hidden = false;
}

function spark(svg, values) {
  const points = values.filter((v) => v !== null && v !== undefined);
  if (points.length < 2) { svg.replaceChildren(); return; }
  const max = Math.max(...points, 1);
  const step = 200 / (values.length - 1);
  const coords = values.map((v, i) => v === null || v === undefined ? null : `${(i * step).toFixed(1)},${(38 - 36 * v / max).toFixed(1)}`).filter(Boolean);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.replaceChildren(line);
}

async function refreshStats() {
  const [stats, workers] = await Promise.all([json("/api/stats"), json("/api/workers")]);
  const now = stats.now;
  const lookups = now.cacheHits + now.cacheMisses;
  $("stat-hits").textContent = lookups ? `${Math.round(100 * now.cacheHits / lookups)}%` : "–";
  $("stat-queue").textContent = now.queueReady === null ? "–" : now.queueReady + (now.queueUnacked ? ` (+${now.queueUnacked} taken)` : "");
  $("stat-workers").textContent = now.workers;
  $("stat-slots").textContent = `${now.busySlots} / ${now.busySlots + now.freeSlots}`;
  const history = stats.history;
  spark($("chart-hits"), history.map((s, i) => {
    if (i === 0) return null;
    const hits = s.cacheHits - history[i - 1].cacheHits, misses = s.cacheMisses - history[i - 1].cacheMisses;
    return hits + misses ? hits / (hits + misses) : null;
  }));
  spark($("chart-queue"), history.map((s) => s.queueReady));
  $("workers").tBodies[0].replaceChildren(...workers.map((w) => el("tr", { "data-worker": w.name },
    el("td", {}, w.name),
    el("td", {}, w.slots),
    el("td", {}, `${w.busySlots} busy, ${w.freeSlots} free`),
    el("td", {}, w.jobsDone),
    el("td", {}, bytes(w.layerStoreBytes)),
    el("td", { "data-platforms": (w.platforms ?? []).join(",") }, (w.platforms ?? []).map((p) => (w.emulatedPlatforms ?? []).includes(p) ? p + " (emulated)" : p).join(", ")),
    el("td", {}, ago(w.lastHeartbeat)))));
  $("no-workers").hidden = workers.length > 0;
}

let tick = 0;
async function refresh() {
  try {
    await refreshBuilds();
    await refreshTimeline();
    if (tick++ % 5 === 0) await refreshStats();
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("updated").textContent = `coordinator unreachable: ${e.message}`;
  }
}

$("lanes").addEventListener("change", (e) => { state.lanes = e.target.checked; refreshTimeline(); });

refresh();
setInterval(refresh, 1000);
