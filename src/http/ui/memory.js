// imaginator's memory page: loads the service's own history of samples
// (/debug/memory/history: the minutes before the page opened), then polls
// /debug/memory, and draws the container's memory stacked so the parts add
// up to what the kernel counts; the kubelet's working set and the limit are
// lines over it. Heap the allocator handed out but the kernel does not
// count yet (pages never touched) is a line, not a band.
'use strict';

const seen = { samples: 0, drawn: 0, failures: [], errors: [], last: null };
window.__memory = seen;
window.addEventListener('error', (e) => seen.errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => seen.errors.push(String(e.reason)));

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const EVERY_MS = Math.max(250, Number(params.get('every_ms')) || 2000);
let keepMs = 5 * 60 * 1000;
const history = [];

const MiB = 1024 * 1024;
const fmt = (b) => (b >= 1024 * MiB ? `${(b / 1024 / MiB).toFixed(2)} GiB` : `${(b / MiB).toFixed(1)} MiB`);
const pos = (x) => Math.max(0, x || 0);

// Bottom to top. Everything up to `kernel` is anonymous memory: what an OOM
// kill depends on. The first four add up to this process's RSS anon.
const BANDS = [
  { key: 'imagemagick', label: 'ImageMagick pixel cache (in the heap)', color: '#7b4fd1' },
  { key: 'cache', label: 'result and source caches, memory tier (in the heap)', color: '#2f8f83' },
  { key: 'heap', label: 'rest of the heap: work in flight and the heap at rest', color: '#2f6fd1' },
  { key: 'overhead', label: 'RSS anon beyond live allocations (freed pages not yet returned, stacks)', color: '#8fb3ea' },
  { key: 'others', label: "other processes' anonymous memory", color: '#c7a24a' },
  { key: 'kernel', label: 'kernel (sockets, inodes, page tables)', color: '#9a9a9a' },
  { key: 'active', label: 'active page cache (reclaimable)', color: '#f0a766' },
  { key: 'inactive', label: 'inactive page cache (reclaimable)', color: '#f7d9b8' },
];
const PROCESS_BANDS = BANDS.slice(0, 4);
const PROCESS_LINES = [
  { key: 'rssAnon', label: "this process's anonymous resident memory (RSS anon: what the kernel counts)", color: '#1c2027' },
  { key: 'allocated', label: 'live allocations (jemalloc), untouched pages included: above RSS anon, the kernel does not count them yet', color: '#b3261e', dash: true },
  { key: 'atRest', label: 'heap at rest (the leak verdict watches its floor)', color: '#2f8f83', dash: true },
];
const LINES = [
  { key: 'workingSet', label: 'working set: container_memory_working_set_bytes (what the seed plotted)', color: '#b3261e', dash: true },
  { key: 'limit', label: 'memory limit (memory.max)', color: '#1c2027' },
];

// A report in the shape of the service's history samples.
function sampleOf(r) {
  const cg = r.cgroup || {};
  return {
    t: Date.now(),
    allocated: r.jemalloc.allocated,
    caches: pos(r.result_cache.memory_bytes) + pos(r.result_cache.sources_bytes),
    imagemagick: r.imagemagick.memory,
    at_rest: r.heap.now,
    in_flight: r.heap.in_flight,
    rss_anon: r.process.rss_anon,
    cgroup_anon: cg.anon,
    cgroup_kernel: cg.kernel == null ? null : pos(cg.kernel) + pos(cg.shmem),
    active_file: cg.active_file,
    inactive_file: cg.inactive_file,
    working_set: cg.working_set,
    memory_max: cg.memory_max,
  };
}

// The bands of one sample. The heap's bands are what the kernel counts of
// it: live allocations up to RSS anon (pages handed out but never touched
// are not resident, so not counted); the rest of RSS anon is overhead.
function parts(s) {
  const allocated = pos(s.allocated);
  const anon = s.rss_anon == null ? allocated : pos(s.rss_anon);
  const counted = Math.min(allocated, anon);
  const im = Math.min(pos(s.imagemagick), counted);
  const cache = Math.min(pos(s.caches), counted - im);
  const p = {
    imagemagick: im,
    cache,
    heap: counted - im - cache,
    overhead: anon - counted,
    untouched: allocated - counted,
    others: 0, kernel: 0, active: 0, inactive: 0,
    workingSet: null, limit: null,
    rssAnon: anon, allocated, atRest: pos(s.at_rest),
  };
  if (s.cgroup_anon != null || s.working_set != null) {
    p.others = pos(pos(s.cgroup_anon) - anon);
    p.kernel = pos(s.cgroup_kernel);
    p.active = pos(s.active_file);
    p.inactive = pos(s.inactive_file);
    p.workingSet = s.working_set;
    p.limit = s.memory_max;
  }
  return p;
}

function legend(id, bands, lines) {
  const ul = $(id);
  const item = (className, style, label) => {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = className;
    Object.assign(swatch.style, style);
    li.append(swatch, label);
    ul.append(li);
  };
  for (const b of bands) item('sw', { background: b.color }, b.label);
  for (const l of lines) item(l.dash ? 'ln dash' : 'ln', { borderColor: l.color }, l.label);
}

const SVG = 'http://www.w3.org/2000/svg';
function el(name, attrs) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function draw() {
  drawChart($('chart'), BANDS, LINES);
  drawChart($('process-chart'), PROCESS_BANDS, PROCESS_LINES);
  seen.drawn += 1;
}

function drawChart(svg, bands, lines) {
  const w = svg.clientWidth || 800;
  const h = svg.clientHeight || 340;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  for (const child of [...svg.childNodes]) if (child.nodeName !== 'desc') svg.removeChild(child);
  if (history.length < 1) return;
  const left = 64, right = 8, top = 10, bottom = 24;
  const now = history[history.length - 1].t;
  // The history kept (two trend windows and a minute), at least 10 s wide.
  const t0 = Math.min(history[0].t, now - 10 * 1000);
  const total = (p) => bands.reduce((s, b) => s + p[b.key], 0);
  let max = 0;
  for (const s of history) max = Math.max(max, total(s.p), ...lines.map((l) => s.p[l.key] || 0));
  max = max * 1.08 || 1;
  const x = (t) => left + ((t - t0) / Math.max(1, now - t0)) * (w - left - right);
  const y = (v) => h - bottom - (v / max) * (h - top - bottom);
  // Grid and labels.
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    svg.append(el('line', { x1: left, x2: w - right, y1: y(v), y2: y(v), stroke: '#e3e6eb' }));
    const label = el('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6472' });
    label.textContent = fmt(v);
    svg.append(label);
  }
  const ago = el('text', { x: left, y: h - 6, 'font-size': 11, fill: '#5b6472' });
  ago.textContent = `${Math.round((now - t0) / 1000)} s ago`;
  const nowLabel = el('text', { x: w - right, y: h - 6, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6472' });
  nowLabel.textContent = 'now';
  svg.append(ago, nowLabel);
  // Stacked areas.
  const base = history.map(() => 0);
  for (const b of bands) {
    const upper = history.map((s, i) => base[i] + s.p[b.key]);
    if (upper.every((v, i) => v === base[i])) continue;
    let d = history.map((s, i) => `${i ? 'L' : 'M'}${x(s.t).toFixed(1)},${y(upper[i]).toFixed(1)}`).join('');
    for (let i = history.length - 1; i >= 0; i--) d += `L${x(history[i].t).toFixed(1)},${y(base[i]).toFixed(1)}`;
    const path = el('path', { d: d + 'Z', fill: b.color, 'fill-opacity': 0.9, 'data-band': b.key });
    const title = el('title', {});
    title.textContent = `${b.label}: ${fmt(history[history.length - 1].p[b.key])}`;
    path.append(title);
    svg.append(path);
    upper.forEach((v, i) => { base[i] = v; });
  }
  for (const l of lines) {
    const pts = history.filter((s) => s.p[l.key] != null);
    if (!pts.length) continue;
    const d = pts.map((s, i) => `${i ? 'L' : 'M'}${x(s.t).toFixed(1)},${y(s.p[l.key]).toFixed(1)}`).join('');
    svg.append(el('path', {
      d, fill: 'none', stroke: l.color, 'stroke-width': 2.5, 'data-line': l.key,
      ...(l.dash ? { 'stroke-dasharray': '7 5' } : {}),
    }));
  }
}

function headers() {
  const token = $('token').value.trim();
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function sample() {
  try {
    const response = await fetch('/debug/memory', { headers: headers(), cache: 'no-store' });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const why = body.error ? `${body.error.code}: ${body.error.message}` : response.statusText;
      seen.failures.push(`${response.status} /debug/memory`);
      $('now').textContent = `${response.status} ${why}`;
      return;
    }
    const report = await response.json();
    const sample = sampleOf(report);
    history.push({ t: sample.t, p: parts(sample) });
    while (history.length && history[0].t < sample.t - keepMs) history.shift();
    seen.samples += 1;
    seen.last = report;
    const p = history[history.length - 1].p;
    const anon = BANDS.slice(0, 6).reduce((s, b) => s + p[b.key], 0);
    const heap = `live heap ${fmt(report.jemalloc.allocated)} (caches ${fmt(sample.caches)}, work in flight ${fmt(pos(report.heap.in_flight))}, at rest ${fmt(pos(report.heap.now))}${p.untouched >= MiB ? `; ${fmt(p.untouched)} of it not yet touched, so not counted` : ''}) · heap at rest: ${report.heap.verdict}`;
    $('now').textContent = report.cgroup
      ? `anonymous memory (counts toward the OOM kill): ${fmt(anon)} · working set ${fmt(p.workingSet)} · in use ${fmt(report.cgroup.memory_current)}${p.limit ? ' · limit ' + fmt(p.limit) : ' · no limit'} · ${heap}`
      : `anonymous memory of this process (counts toward the OOM kill): ${fmt(anon)} (no memory cgroup here) · ${heap}`;
    const ul = $('explanation');
    ul.replaceChildren(...report.explanation.map((line) => {
      const li = document.createElement('li');
      li.textContent = line;
      return li;
    }));
    draw();
  } catch (e) {
    seen.failures.push(String(e));
  }
}

function showProfile(url, label) {
  const view = $('profile-view');
  $('profile-status').textContent = `${label}: rendering…`;
  if (!$('token').value.trim()) {
    // Loopback admin: the flame graph loads as its own document, with its
    // own zoom and search.
    const frame = document.createElement('iframe');
    frame.title = label;
    frame.addEventListener('load', () => { $('profile-status').textContent = `${label} (click a frame to zoom)`; });
    frame.src = url;
    view.replaceChildren(frame);
    return;
  }
  // Fetched first (with the token, if any), then shown from a blob URL.
  fetch(url, { headers: headers() }).then(async (response) => {
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      $('profile-status').textContent = body.error ? `${response.status} ${body.error.code}: ${body.error.message}` : `${response.status}`;
      return;
    }
    const blob = await response.blob();
    const frame = document.createElement('iframe');
    frame.title = label;
    frame.src = URL.createObjectURL(blob);
    view.replaceChildren(frame);
    $('profile-status').textContent = `${label} (${Math.round(blob.size / 1024)} KiB SVG; click a frame to zoom)`;
  }).catch((e) => { $('profile-status').textContent = String(e); });
}

function start() {
  legend('legend', BANDS, LINES);
  legend('process-legend', PROCESS_BANDS, PROCESS_LINES);
  $('profile').addEventListener('click', () => showProfile('/dump_profile?format=svg', 'heap in use'));
  $('baseline').addEventListener('click', async () => {
    const r = await fetch('/debug/heap_baseline', { method: 'POST', headers: headers() });
    $('profile-status').textContent = r.ok ? 'baseline stored: use the service, then ask for the growth' : `${r.status}`;
  });
  $('growth').addEventListener('click', () => showProfile('/debug/heap_growth?since=baseline&format=svg', 'growth since the baseline'));
  window.addEventListener('resize', draw);
  // The service's own history first: someone arriving mid-incident sees
  // the minutes before.
  fetch('/debug/memory/history', { headers: headers(), cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : null))
    .then((h) => {
      if (h) {
        keepMs = Math.max(keepMs, (2 * h.window_seconds + 60) * 1000);
        for (const s of h.samples) history.push({ t: s.t, p: parts(s) });
        seen.history = h.samples.length;
      }
    })
    .catch((e) => seen.failures.push(String(e)))
    .finally(() => {
      sample();
      setInterval(sample, EVERY_MS);
    });
}

start();
