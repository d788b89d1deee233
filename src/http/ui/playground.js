// imaginator playground: an image through every alias side by side, and a
// chain editor with live preview. Plain JS, no dependencies, no network
// beyond this server.
'use strict';

// What the page saw, for people and for the browser test.
const seen = { id: null, aliases: 0, done: 0, failures: [], errors: [], layoutShift: 0, shifted: [] };
window.__playground = seen;
// Cumulative layout shift not caused by the user's own input: images
// arriving must not move what is already on screen.
if (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes.includes('layout-shift')) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      seen.layoutShift += e.value;
      for (const src of e.sources || []) {
        const n = src.node;
        seen.shifted.push(n ? (n.id || n.className || n.nodeName) : '?');
      }
    }
  }).observe({ type: 'layout-shift', buffered: true });
}
window.addEventListener('error', (e) => seen.errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => seen.errors.push(String(e.reason)));

const $ = (id) => document.getElementById(id);
const tiles = [];
let signing = false;

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

// `cache;desc="miss", queue;dur=0.3, render;dur=41.2, total;dur=43.0`
function parseTiming(header) {
  const out = {};
  for (const part of (header || '').split(',')) {
    const [name, ...params] = part.trim().split(';');
    if (!name) continue;
    const entry = {};
    for (const p of params) {
      const [k, v] = p.split('=');
      entry[k.trim()] = (v || '').replace(/^"|"$/g, '');
    }
    out[name] = entry;
  }
  return out;
}

function status(text, bad) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('bad', !!bad);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.error.code}: ${body.error.message}`;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

// Fetches an image URL and shows it in `img`; returns what the caption says.
async function show(url, img) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await errorText(response));
  const blob = await response.blob();
  const timing = parseTiming(response.headers.get('server-timing'));
  const previous = img.src;
  const objectUrl = URL.createObjectURL(blob);
  await new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error('the browser could not decode the answer'));
    img.src = objectUrl;
  });
  if (previous.startsWith('blob:')) URL.revokeObjectURL(previous);
  const format = (response.headers.get('content-type') || '').replace('image/', '').toUpperCase();
  const server = timing.total ? `${Number(timing.total.dur).toFixed(1)} ms on the server` : '';
  const render = timing.render ? ` (render ${Number(timing.render.dur).toFixed(1)} ms)` : '';
  const tier = response.headers.get('x-cache') || (timing.cache && timing.cache.desc) || '';
  return {
    width: img.naturalWidth,
    height: img.naturalHeight,
    text: `${img.naturalWidth} × ${img.naturalHeight} ${format} · ${formatBytes(blob.size)}\n${server}${render}${tier ? ' · cache: ' + tier : ''}`,
  };
}

function makeTile(alias) {
  const li = document.createElement('li');
  li.className = 'tile';
  li.dataset.alias = alias.name;
  li.dataset.state = 'idle';
  const h = document.createElement('h3');
  h.textContent = alias.name;
  const desc = document.createElement('p');
  desc.className = 'desc';
  desc.textContent = alias.description || alias.chain;
  const params = document.createElement('div');
  params.className = 'params';
  const inputs = [];
  for (const p of alias.params || []) {
    const label = document.createElement('label');
    const input = p.type === 'enum' ? document.createElement('select') : document.createElement('input');
    input.name = p.name;
    if (p.type === 'enum') {
      for (const v of p.values) {
        const o = document.createElement('option');
        o.value = o.textContent = v;
        input.append(o);
      }
      input.value = p.default;
    } else {
      input.type = 'number';
      input.min = p.min;
      input.max = p.max;
      input.step = p.type === 'int' ? '1' : 'any';
      input.value = p.default;
      input.required = true;
    }
    input.title = p.type === 'enum' ? p.values.join(', ') : `${p.min} to ${p.max}`;
    label.append(`${p.name}`, input);
    params.append(label);
    inputs.push(input);
  }
  const figure = document.createElement('figure');
  figure.style.margin = '0';
  const frame = document.createElement('div');
  frame.className = 'frame';
  const img = document.createElement('img');
  img.alt = `${alias.name} of the image`;
  frame.append(img);
  const meta = document.createElement('figcaption');
  meta.className = 'meta';
  meta.style.whiteSpace = 'pre-line';
  figure.append(frame, meta);
  li.append(h, desc, params, figure);
  const tile = { alias, li, inputs, img, meta, seq: 0 };
  let timer = null;
  for (const input of inputs) {
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => render(tile), 300);
    });
  }
  return tile;
}

async function render(tile) {
  if (!seen.id) return;
  const query = new URLSearchParams();
  for (const input of tile.inputs) {
    if (!input.checkValidity()) {
      tile.meta.textContent = `${input.name}: ${input.title}`;
      tile.li.dataset.state = 'error';
      return;
    }
    query.set(input.name, input.value);
  }
  const seq = ++tile.seq;
  tile.li.dataset.state = 'loading';
  const url = `/images/${seen.id}/${encodeURIComponent(tile.alias.name)}${query.toString() ? '?' + query : ''}`;
  try {
    const shown = await show(url, tile.img);
    if (seq !== tile.seq) return;
    tile.meta.textContent = shown.text;
    tile.li.dataset.width = shown.width;
    tile.li.dataset.height = shown.height;
    tile.li.dataset.state = 'done';
  } catch (e) {
    if (seq !== tile.seq) return;
    seen.failures.push(`${url}: ${e.message}`);
    tile.meta.textContent = e.message;
    tile.li.dataset.state = 'error';
  }
  seen.done = tiles.filter((t) => t.li.dataset.state === 'done').length;
}

async function useImage(id) {
  seen.id = id;
  $('image-id').value = id;
  status(`image ${id}`);
  const chain = $('chain');
  if (!chain.value || /original\([0-9a-f]*\)/.test(chain.value)) {
    const rest = chain.value.replace(/^original\([0-9a-f]*\)/, '') || ':thumbnail(200)';
    chain.value = `original(${id})${rest}`;
  }
  await Promise.all([...tiles.map(render), checkChain()]);
}

async function upload(file) {
  status(`uploading ${file.name} (${formatBytes(file.size)})…`);
  try {
    const response = await fetch('/images', {
      method: 'POST',
      headers: { 'content-type': file.type || 'application/octet-stream' },
      body: file,
    });
    if (!response.ok) throw new Error(await errorText(response));
    const meta = await response.json();
    await useImage(meta.id);
    status(`${file.name}: ${meta.width} × ${meta.height} ${meta.format.toUpperCase()}, ${formatBytes(meta.bytes)}, id ${meta.id}`);
  } catch (e) {
    seen.failures.push(`upload: ${e.message}`);
    status(e.message, true);
  }
}

// The chain editor: parse on every pause in typing, show the canonical form
// or the error under the character it points at, then the result.
let chainSeq = 0;
async function checkChain() {
  const text = $('chain').value.trim();
  const seq = ++chainSeq;
  const err = $('chain-error');
  if (!text) return;
  const response = await fetch(`/ui/api/chain?c=${encodeURIComponent(text)}`);
  const body = await response.json();
  if (seq !== chainSeq) return;
  if (!response.ok) {
    const e = body.error;
    err.hidden = false;
    err.textContent = typeof e.position === 'number'
      ? `${text}\n${' '.repeat(Math.min(e.position, text.length))}^ ${e.message}`
      : `${e.code}: ${e.message}`;
    err.dataset.position = typeof e.position === 'number' ? e.position : '';
    $('canonical').textContent = '–';
    $('chain-url').textContent = '–';
    return;
  }
  err.hidden = true;
  err.textContent = '';
  $('canonical').textContent = body.canonical;
  let url = '/' + encodeURI(body.canonical);
  $('sign-box').hidden = !body.signed;
  if (body.signed) {
    if (!signing) {
      $('chain-url').textContent = 'signed URLs required: sign it (admin)';
      return;
    }
    url = await sign(body.canonical);
    if (!url || seq !== chainSeq) return;
  }
  $('chain-url').textContent = url;
  try {
    const shown = await show(url, $('chain-img'));
    if (seq === chainSeq) $('chain-meta').textContent = shown.text;
  } catch (e) {
    if (seq === chainSeq) $('chain-meta').textContent = e.message;
  }
}

async function sign(path) {
  const response = await fetch('/admin/sign', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path }),
  });
  if (!response.ok) {
    $('chain-url').textContent = await errorText(response);
    signing = false;
    return null;
  }
  return (await response.json()).url;
}

async function start() {
  const response = await fetch('/aliases');
  if (!response.ok) {
    $('main').classList.remove('loading');
    status(await errorText(response), true);
    return;
  }
  const { aliases } = await response.json();
  seen.aliases = aliases.length;
  const list = $('tiles');
  for (const alias of aliases) {
    const tile = makeTile(alias);
    tiles.push(tile);
    list.append(tile.li);
  }
  $('main').classList.remove('loading');
  status('choose or drop an image to see every alias');

  const file = $('file');
  file.addEventListener('change', () => file.files[0] && upload(file.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  $('by-id').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = $('image-id').value.trim();
    if (/^[0-9a-f]{64}$/.test(id)) useImage(id);
    else status('an id is 64 hexadecimal digits', true);
  });
  let timer = null;
  $('chain').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(checkChain, 300);
  });
  $('sign').addEventListener('click', () => { signing = true; checkChain(); });
  const fromUrl = new URLSearchParams(location.search).get('id');
  if (fromUrl && /^[0-9a-f]{64}$/.test(fromUrl)) useImage(fromUrl);
}

start().catch((e) => seen.errors.push(String(e)));
