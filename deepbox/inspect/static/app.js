// deepbox inspector: the page of one run. Data comes from the server's /api/* endpoints; the server
// says over Server-Sent Events (/api/events) when the recorder has written something new.
"use strict";

const S = {
  name: "", meta: null, config: null, steps: [], epochs: [], code: null,
  view: "curves", selected: null, epochSel: null, epochCache: new Map(), charts: [], busy: false, again: false,
  connected: false,
};
const PALETTE = ["#2f6fde", "#e4572e", "#2e8b57", "#9b59b6", "#f0a202", "#17becf", "#8c564b", "#d62728",
                 "#7f7f7f", "#bcbd22"];

// ------------------------------------------------------------------------------------------ helpers
const $ = (sel) => document.querySelector(sel);
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
function fmt(x) {
  if (x == null || Number.isNaN(x)) return "–";
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a < 1e-3 || a >= 1e5) return x.toExponential(2);
  return Number(x.toPrecision(3)).toString();
}
const pct = (x) => (x == null ? "–" : (100 * x).toFixed(1) + "%");
function showError(msg) {
  const box = $("#errors");
  box.append(el("div", { text: msg }));
  while (box.children.length > 3) box.firstChild.remove();
}
async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}
function className(i) {
  const c = S.meta && S.meta.classes;
  return c && c[i] != null ? c[i] : String(i);
}
function paramLayers() {
  return S.meta ? S.meta.layers.filter((l) => l.trainable > 0) : [];
}
function latest(name) {
  for (let i = S.steps.length - 1; i >= 0; i--) {
    const r = S.steps[i].layers[name];
    if (r) return r;
  }
  return null;
}
function depthColor(i, n) {  // input (blue) -> output (red)
  const t = n <= 1 ? 0 : i / (n - 1);
  return `hsl(${Math.round(220 - 220 * t)}, 70%, 45%)`;
}

// ------------------------------------------------------------------------------------------ data
async function refresh() {
  if (S.busy) { S.again = true; return; }
  S.busy = true;
  try {
    const [run, st, ep] = await Promise.all([
      getJSON("/api/run"), getJSON(`/api/steps?since=${S.steps.length}`), getJSON(`/api/epochs?since=${S.epochs.length}`)]);
    S.name = run.name; S.meta = run.meta; S.config = run.config;
    if (st.since === S.steps.length) S.steps.push(...st.records);
    if (ep.since === S.epochs.length) S.epochs.push(...ep.records);
    if (S.meta && (!S.code || !Object.keys(S.code).length)) S.code = await getJSON("/api/code");
    render();
  } catch (e) {
    showError(String(e));
  } finally {
    S.busy = false;
    if (S.again) { S.again = false; refresh(); }
  }
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("update", (ev) => {
    S.connected = true;
    const d = JSON.parse(ev.data);
    if (d.steps !== S.steps.length || d.epochs !== S.epochs.length || !S.meta || d.status !== S.meta.status) refresh();
    else renderHeader();
  });
  es.onerror = () => { S.connected = false; renderHeader(); };
}

// ------------------------------------------------------------------------------------------ rendering
function render() {
  renderHeader();
  for (const c of S.charts) c.destroy();
  S.charts = [];
  if (!S.meta) {
    $("#view-" + S.view).querySelectorAll(".chart").forEach((c) => { c.textContent = "waiting for the first record…"; });
    return;
  }
  ({ curves: renderCurves, layers: renderLayers, flow: renderFlow, images: renderImages })[S.view]();
}

function renderHeader() {
  const m = S.meta;
  $("#run-title").textContent = m ? `${S.name} — ${m.model}, ${m.n_params.toLocaleString()} parameters` : S.name;
  const pill = $("#status");
  let status = m ? m.status : "waiting";
  if (!S.connected && status === "running") status = "disconnected";
  pill.textContent = status === "running" ? "live" : status;
  pill.className = "pill " + ({ running: "live", finished: "finished", disconnected: "lost" }[status] || "");
  const last = S.steps[S.steps.length - 1];
  $("#counters").textContent = last ? `step ${last.step} · epoch ${S.epochs.length} · ${S.steps.length} records` : "";
}

function plot(target, opts, data) {
  target.textContent = "";
  const width = Math.max(320, target.clientWidth || target.parentElement.clientWidth - 28);
  const u = new uPlot({ width, height: opts.height || 250, legend: { live: true }, ...opts }, data, target);
  S.charts.push(u);
  return u;
}
function emptyChart(target, text) { target.textContent = ""; target.append(el("p", { class: "empty", text })); }

// union of x values, and each series' y at those x (null where it has none)
function align(seriesList) {
  const xs = [...new Set(seriesList.flatMap((s) => s.x))].sort((a, b) => a - b);
  const idx = new Map(xs.map((x, i) => [x, i]));
  const ys = seriesList.map((s) => {
    const y = new Array(xs.length).fill(null);
    s.x.forEach((x, i) => { y[idx.get(x)] = s.y[i]; });
    return y;
  });
  return [xs, ...ys];
}

function renderCurves() {
  const steps = S.steps, epochs = S.epochs;
  const loss = [
    { label: "train loss (recorded steps)", x: steps.map((r) => r.step), y: steps.map((r) => r.loss_mean ?? r.loss), color: "#9db6e6" },
    { label: "train loss (epoch)", x: epochs.map((e) => e.step), y: epochs.map((e) => e.logs.loss ?? null), color: PALETTE[0] },
    { label: "validation loss", x: epochs.map((e) => e.step), y: epochs.map((e) => e.logs.val_loss ?? null), color: PALETTE[1] },
  ].filter((s) => s.y.some((v) => v != null));
  if (loss.length) {
    plot($("#chart-loss"), {
      scales: { x: { time: false } }, axes: [{ label: "step" }, {}],
      series: [{ label: "step" }, ...loss.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true,
        points: { show: s.x.length < 60 } }))],
    }, align(loss));
  } else emptyChart($("#chart-loss"), "no loss recorded yet");

  const accKeys = [...new Set(epochs.flatMap((e) => Object.keys(e.logs)))].filter((k) => /acc/.test(k));
  const acc = accKeys.map((k, i) => ({ label: k, x: epochs.map((e) => e.epoch), y: epochs.map((e) => e.logs[k] ?? null), color: PALETTE[i] }));
  if (epochs.some((e) => e.accuracy_sample != null) && !accKeys.length) {
    acc.push({ label: "accuracy on the inspector's sample", x: epochs.map((e) => e.epoch), y: epochs.map((e) => e.accuracy_sample ?? null), color: PALETTE[2] });
  }
  if (acc.length && epochs.length) {
    plot($("#chart-acc"), {
      scales: { x: { time: false } }, axes: [{ label: "epoch" }, {}],
      series: [{ label: "epoch" }, ...acc.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true }))],
    }, align(acc));
  } else emptyChart($("#chart-acc"), "accuracy appears after the first epoch");

  const lr = steps.filter((r) => r.lr != null);
  if (lr.length) {
    plot($("#chart-lr"), {
      scales: { x: { time: false } }, axes: [{ label: "step" }, { values: (u, sp) => sp.map(fmt), size: 60 }],
      series: [{ label: "step" }, { label: "learning rate", stroke: PALETTE[2], width: 2 }],
    }, [lr.map((r) => r.step), lr.map((r) => r.lr)]);
  } else emptyChart($("#chart-lr"), "no learning rate recorded");

  const box = $("#model-summary");
  box.textContent = "";
  const t = el("table", { class: "layers" });
  t.append(el("thead", {}, el("tr", {}, el("th", { text: "layer" }), el("th", { text: "type" }),
    el("th", { text: "output" }), el("th", { class: "num", text: "params" }))));
  const tb = el("tbody");
  for (const l of S.meta.layers) {
    const tr = el("tr", {}, el("td", { text: l.name }), el("td", { text: l.type }),
      el("td", { text: l.shape ? "(" + l.shape.join(", ") + ")" : "?" }), el("td", { class: "num", text: l.params.toLocaleString() }));
    tr.addEventListener("click", () => { S.selected = l.name; switchView("layers"); });
    tb.append(tr);
  }
  t.append(tb);
  box.append(t, el("p", { class: "hint", text: `${S.meta.n_params.toLocaleString()} parameters; one step in ${S.meta.every} recorded.` }));
}

// ------------------------------------------------------------------------------------------ layers
function renderLayers() {
  const tbody = $("#layer-table tbody");
  tbody.textContent = "";
  const gmax = Math.max(0, ...S.meta.layers.map((l) => (latest(l.name) || {}).gnorm || 0));
  S.meta.layers.forEach((l, i) => {
    const r = latest(l.name) || {};
    const a = r.act || {};
    const tdZeros = el("td", { class: "num", text: pct(a.zeros) });
    if (a.zeros > 0.5) tdZeros.classList.add("warn");
    const tdSat = el("td", { class: "num", text: l.saturating ? pct(a.sat) : "" });
    if (a.sat > 0.3) tdSat.classList.add("bad");
    const tdG = el("td", { class: "num", text: r.gnorm != null ? fmt(r.gnorm) : "" });
    if (r.gnorm != null && gmax > 0 && r.gnorm < 1e-3 * gmax) tdG.classList.add("bad");
    const tdU = el("td", { class: "num", text: r.upd != null ? fmt(r.upd) : "" });
    if (r.upd != null && (r.upd < 1e-5 || r.upd > 1e-1)) tdU.classList.add("warn");
    const tr = el("tr", { "data-layer": l.name }, el("td", { text: String(i) }), el("td", { text: l.name }),
      el("td", { text: l.type }), el("td", { text: l.shape ? "(" + l.shape.join(", ") + ")" : "?" }),
      el("td", { class: "num", text: l.params ? l.params.toLocaleString() : "" }),
      el("td", { class: "num", text: fmt(a.mean) }), el("td", { class: "num", text: fmt(a.std) }), tdZeros, tdSat, tdG, tdU);
    if (l.name === S.selected) tr.classList.add("selected");
    tr.addEventListener("click", () => { S.selected = l.name; renderLayers(); });
    tbody.append(tr);
  });
  renderLayerDetail();
}

function renderLayerDetail() {
  const box = $("#layer-detail");
  box.textContent = "";
  const l = S.meta.layers.find((x) => x.name === S.selected);
  if (!l) { box.append(el("p", { class: "hint", text: "Select a layer on the left." })); return; }
  box.append(el("h2", { text: `${l.name}: ${l.type}(${l.repr || ""})` }));
  const r = latest(l.name) || {};
  const a = r.act || {}, g = r.grad || {};
  box.append(el("div", { class: "stats-line", text:
    `activations: mean ${fmt(a.mean)}, std ${fmt(a.std)}, range [${fmt(a.min)}, ${fmt(a.max)}]` +
    (l.saturating ? `, saturated ${pct(a.sat)}` : `, zeros ${pct(a.zeros)}`) +
    ` · gradient: std ${fmt(g.std)}` + (r.gnorm != null ? ` · weight-gradient norm ${fmt(r.gnorm)}, update/weight ${fmt(r.upd)}` : "") }));
  box.append(el("h3", { text: "Activation histogram over time" }));
  const c1 = el("canvas", { class: "heat", "data-kind": "act" });
  box.append(c1);
  box.append(el("h3", { text: "Gradient histogram over time (at the layer's output)" }));
  const c2 = el("canvas", { class: "heat", "data-kind": "grad" });
  box.append(c2);
  drawHeat(c1, l.name, "act");
  drawHeat(c2, l.name, "grad");
  if (S.steps.some((s) => s.layers[l.name] && s.layers[l.name].wgrad)) {
    box.append(el("h3", { text: "Weight-gradient histogram over time" }));
    const c3 = el("canvas", { class: "heat", "data-kind": "wgrad" });
    box.append(c3);
    drawHeat(c3, l.name, "wgrad");
  }
  const code = S.code && S.code[l.type];
  const codeBox = el("div", { class: "code-box" });
  box.append(codeBox);
  if (!code) { codeBox.append(el("p", { class: "hint", text: "No source recorded for this layer type yet." })); return; }
  codeBox.append(el("h3", { text: `What ${l.type} is` }), el("pre", { class: "doc", text: code.doc || "(no docstring)" }));
  for (const op of code.ops) {
    codeBox.append(el("h3", { text: `The reference op: ${op.name} — forward and backward` }),
      el("div", { class: "srcfile", text: `${op.file}:${op.line}` + (code.how === "traced" ? "  (found by tracing the layer's graph)" : "") }),
      codeBlock(op.source || "(source not available)"));
  }
  if (!code.ops.length) codeBox.append(el("p", { class: "hint", text: "No reference op is known for this layer type." }));
  if (code.forward && code.forward.source) {
    codeBox.append(el("h3", { text: `${l.type}.forward` }), el("div", { class: "srcfile", text: `${code.forward.file}:${code.forward.line}` }),
      codeBlock(code.forward.source));
  }
}

const PY = /(#[^\n]*)|("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|\b(def|class)(\s+)(\w+)|\b(return|if|elif|else|for|while|in|not|and|or|is|None|True|False|import|from|as|with|lambda|yield|raise|try|except|finally|pass|break|continue|assert|del|self|ctx)\b|\b(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\b/g;
function codeBlock(src) {
  const pre = el("pre", { class: "code" });
  let last = 0;
  const add = (text, cls) => { if (!text) return; pre.append(cls ? el("span", { class: cls, text }) : document.createTextNode(text)); };
  for (const m of src.matchAll(PY)) {
    add(src.slice(last, m.index));
    if (m[1]) add(m[1], "c");
    else if (m[2]) add(m[2], "s");
    else if (m[3]) { add(m[3], "k"); add(m[4]); add(m[5], "d"); }
    else if (m[6]) add(m[6], "k");
    else if (m[7]) add(m[7], "n");
    last = m.index + m[0].length;
  }
  add(src.slice(last));
  return pre;
}

// a histogram per recorded step, as columns of a heat map on a shared value axis
function viridis(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1), i = Math.floor(x), f = x - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}
function drawHeat(canvas, name, key) {
  const recs = S.steps.map((s) => [s.step, s.layers[name] && s.layers[name][key]]).filter((p) => p[1] && p[1].m > 0);
  const W = canvas.clientWidth || 500, H = canvas.clientHeight || 150;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = W * dpr; canvas.height = H * dpr;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#6b7580"; ctx.font = "11px system-ui, sans-serif";
  if (!recs.length) { ctx.fillText("nothing recorded yet", 10, 20); return; }
  // a shared value axis wide enough for the bulk of every record (mean +- 4 std), not its rare outliers
  const lo = Math.min(...recs.map(([, s]) => Math.max(s.lo, s.mean - 4 * s.std)));
  const hi = Math.max(...recs.map(([, s]) => Math.min(s.hi, s.mean + 4 * s.std)));
  const R = 48, C = recs.length, span = hi - lo || 1;
  const rowOf = (v) => Math.min(R - 1, Math.max(0, Math.floor(((v - lo) / span) * R)));
  const img = new ImageData(C, R);
  recs.forEach(([, s], c) => {
    const col = new Float64Array(R), B = s.hist.length, w = (s.hi - s.lo) / B;
    s.hist.forEach((k, b) => {  // spread each bin's count over the rows its value range covers
      if (!k) return;
      const r0 = rowOf(s.lo + b * w), r1 = rowOf(s.lo + (b + 1) * w - 1e-12 * span);
      for (let r = r0; r <= r1; r++) col[r] += k / (r1 - r0 + 1);
    });
    const mx = Math.max(...col) || 1;
    for (let r = 0; r < R; r++) {
      const [cr, cg, cb] = col[r] > 0 ? viridis(Math.sqrt(col[r] / mx)) : [248, 249, 251];
      const p = ((R - 1 - r) * C + c) * 4;  // high values at the top
      img.data[p] = cr; img.data[p + 1] = cg; img.data[p + 2] = cb; img.data[p + 3] = 255;
    }
  });
  const off = document.createElement("canvas");
  off.width = C; off.height = R;
  off.getContext("2d").putImageData(img, 0, 0);
  const L = 62, B = 16;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, L, 2, W - L - 4, H - B - 4);
  ctx.fillStyle = "#6b7580";
  ctx.textAlign = "right";
  ctx.fillText(fmt(hi), L - 4, 12); ctx.fillText(fmt((hi + lo) / 2), L - 4, (H - B) / 2 + 4); ctx.fillText(fmt(lo), L - 4, H - B - 2);
  ctx.textAlign = "left"; ctx.fillText(`step ${recs[0][0]}`, L, H - 3);
  ctx.textAlign = "right"; ctx.fillText(`step ${recs[C - 1][0]}`, W - 4, H - 3);
}

// ------------------------------------------------------------------------------------------ gradient flow
function renderFlow() {
  // normalisation layers' few parameters get small gradients of their own: left out unless asked for
  const withNorms = $("#flow-norms").checked;
  const layers = paramLayers().filter((l) => withNorms || !/Norm/.test(l.type));
  const names = layers.map((l) => l.name);
  const withFlow = S.steps.filter((s) => names.some((n) => s.layers[n] && s.layers[n].gnorm > 0));
  if (!withFlow.length || !names.length) {
    emptyChart($("#chart-flow"), "no gradients recorded yet"); emptyChart($("#chart-gnorm"), ""); emptyChart($("#chart-upd"), "");
    return;
  }
  const k = Math.min(6, withFlow.length);
  const pick = [...new Set(Array.from({ length: k }, (_, i) => Math.round((i * (withFlow.length - 1)) / Math.max(1, k - 1))))];
  const recs = pick.map((i) => withFlow[i]);
  const pos = (v) => (v > 0 ? v : null);
  plot($("#chart-flow"), {
    height: 320,
    scales: { x: { time: false, range: [-0.3, names.length - 0.7] }, y: { distr: 3 } },
    axes: [{ label: "layer (input → output)", splits: () => names.map((_, i) => i), values: (u, sp) => sp.map((i) => names[i] ?? "") },
      { label: "gradient norm", values: (u, sp) => sp.map(fmt), size: 70 }],
    series: [{ label: "layer", value: (u, i) => (i == null ? "" : names[i] ?? "") },
      ...recs.map((r, j) => ({ label: `step ${r.step}`, stroke: `rgba(47,111,222,${0.25 + 0.75 * (j + 1) / recs.length})`,
        width: j === recs.length - 1 ? 3 : 1.5, points: { show: true, size: 6 } }))],
  }, [names.map((_, i) => i), ...recs.map((r) => names.map((n) => pos(r.layers[n] && r.layers[n].gnorm)))]);

  const overTime = (key, target, label) => {
    const rs = S.steps.filter((s) => names.some((n) => s.layers[n] && s.layers[n][key] > 0));
    if (!rs.length) { emptyChart(target, "nothing recorded yet"); return; }
    plot(target, {
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [{ label: "step" }, { label, values: (u, sp) => sp.map(fmt), size: 70 }],
      series: [{ label: "step" }, ...names.map((n, i) => ({ label: n, stroke: depthColor(i, names.length), width: 1.5, spanGaps: true }))],
    }, [rs.map((r) => r.step), ...names.map((n) => rs.map((r) => pos(r.layers[n] && r.layers[n][key])))]);
  };
  overTime("gnorm", $("#chart-gnorm"), "gradient norm");
  overTime("upd", $("#chart-upd"), "update / weight");
}

// ------------------------------------------------------------------------------------------ images
function decode(arr) {
  const bin = atob(arr.data), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
// one image of an (N, H, W, C) or (N, H, W) uint8 array as a canvas
function imageCanvas(arr, bytes, n) {
  const [, H, W, Cc] = arr.shape.length === 4 ? arr.shape : [arr.shape[0], arr.shape[1], arr.shape[2], 1];
  const c = el("canvas");
  c.width = W; c.height = H;
  const img = new ImageData(W, H), base = n * H * W * Cc;
  for (let i = 0; i < H * W; i++) {
    const p = i * 4;
    if (Cc === 3) { img.data[p] = bytes[base + i * 3]; img.data[p + 1] = bytes[base + i * 3 + 1]; img.data[p + 2] = bytes[base + i * 3 + 2]; }
    else { const v = bytes[base + i * Cc]; img.data[p] = img.data[p + 1] = img.data[p + 2] = v; }
    img.data[p + 3] = 255;
  }
  c.getContext("2d").putImageData(img, 0, 0);
  return c;
}

async function renderImages() {
  const slider = $("#epoch-slider");
  const withArrays = S.epochs.filter((e) => e.arrays);
  if (!withArrays.length) {
    $("#epoch-label").textContent = "no per-epoch views yet (they need test data: Inspector(data=...))";
    for (const id of ["#confusion", "#worst", "#filters", "#fmaps"]) $(id).textContent = "";
    return;
  }
  const epochsList = withArrays.map((e) => e.epoch);
  slider.min = 0; slider.max = epochsList.length - 1;
  const follow = S.epochSel == null || S.epochSel === S.lastShownMax;
  if (follow) S.epochSel = epochsList[epochsList.length - 1];
  S.lastShownMax = epochsList[epochsList.length - 1];
  slider.value = Math.max(0, epochsList.indexOf(S.epochSel));
  slider.oninput = () => { S.epochSel = epochsList[+slider.value]; renderImages(); };
  const n = S.epochSel;
  $("#epoch-label").textContent = `epoch ${n} of ${epochsList[epochsList.length - 1]}`;
  let doc = S.epochCache.get(n);
  if (!doc) {
    try { doc = await getJSON(`/api/epoch/${n}`); } catch (e) { showError(String(e)); return; }
    S.epochCache.set(n, doc);
  }
  if (n !== S.epochSel) return;  // the slider moved on meanwhile
  const rec = doc.record, A = doc.arrays;

  const cm = rec.confusion || [];
  const box = $("#confusion");
  box.textContent = "";
  if (cm.length) {
    const t = el("table", { class: "confusion" });
    const head = el("tr", {}, el("th"));
    cm.forEach((_, j) => head.append(el("th", { text: className(j), title: className(j) })));
    t.append(head);
    cm.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      const tr = el("tr", {}, el("th", { text: className(i), title: className(i) }));
      row.forEach((v, j) => {
        const f = v / total;
        const td = el("td", { text: v ? String(v) : "", title: `true ${className(i)}, predicted ${className(j)}: ${v}` });
        td.style.background = i === j ? `rgba(46,139,87,${0.15 + 0.85 * f})` : (v ? `rgba(196,61,61,${0.12 + 0.88 * Math.min(1, 3 * f)})` : "#f6f7f9");
        if (f > 0.55) td.style.color = "#fff";
        tr.append(td);
      });
      t.append(tr);
    });
    box.append(t, el("p", { class: "hint", text: `accuracy on ${rec.n_sample} test samples: ${pct(rec.accuracy_sample)}` }));
  }

  const worst = $("#worst");
  worst.textContent = "";
  if (A.worst && A.worst.shape[0]) {
    const bytes = decode(A.worst);
    rec.worst.forEach((w, i) => {
      worst.append(el("div", { class: "thumb" }, imageCanvas(A.worst, bytes, i),
        el("div", { text: `true ${className(w.label)}` }), el("div", { class: "bad", text: `said ${className(w.pred)} ${pct(w.p_pred)}` })));
    });
  } else worst.append(el("p", { class: "empty", text: "no misclassified image in the sample" }));

  const filters = $("#filters");
  filters.textContent = "";
  $("#filters-of").textContent = rec.filters_of ? `layer ${rec.filters_of}` : "";
  if (A.filters) {
    const bytes = decode(A.filters);
    for (let i = 0; i < A.filters.shape[0]; i++) filters.append(el("div", { class: "thumb small" }, imageCanvas(A.filters, bytes, i)));
  } else filters.append(el("p", { class: "empty", text: "the first layer has no image-shaped weights" }));

  const fm = $("#fmaps");
  fm.textContent = "";
  if (A.fixed) {
    fm.append(el("div", { class: "fmap-row" }, el("span", { class: "label", text: "input" }), imageCanvas(A.fixed, decode(A.fixed), 0),
      el("span", { class: "hint", text: `true ${className(rec.fixed_label)}, predicted ${className(rec.fixed_pred)}` })));
  }
  (rec.fmaps || []).forEach((name, i) => {
    const arr = A["fmap" + i];
    if (!arr) return;
    const layer = S.meta.layers.find((l) => l.name === name);
    const row = el("div", { class: "fmap-row" }, el("span", { class: "label", text: `${name} ${layer ? layer.type : ""}` }));
    const bytes = decode(arr);
    const shape = { shape: [arr.shape[0], arr.shape[1], arr.shape[2], 1] };
    for (let c = 0; c < arr.shape[0]; c++) row.append(imageCanvas(shape, bytes, c));
    fm.append(row);
  });
  if (!fm.children.length) fm.append(el("p", { class: "empty", text: "no image-shaped layer outputs" }));
}

// ------------------------------------------------------------------------------------------ wiring
function switchView(view) {
  S.view = view;
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === "view-" + view));
  if (location.hash !== "#" + view) history.replaceState(null, "", "#" + view);
  render();
}
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => switchView(b.dataset.view)));
$("#flow-norms").addEventListener("change", render);
window.addEventListener("error", (e) => showError(e.message));
window.addEventListener("resize", () => { clearTimeout(S.resizeTimer); S.resizeTimer = setTimeout(render, 150); });
const initial = location.hash.slice(1);
if (["curves", "layers", "flow", "images"].includes(initial)) switchView(initial);
refresh().then(connect);
