// The overlay page: telemetry over a WebSocket, the preview image polled at 15 fps, controls by POST.
// Everything is drawn here on canvases; nothing is loaded from outside the assistant.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { last: null, frameMs: [], law: [], previewBusy: false };
const STAGE_COLOURS = { preprocess: "#8f9ba8", vision: "#6cc4ff", query_prefill: "#c792ea", quecc: "#7be08a", visual_prefill: "#ffb45e", decode: "#ff6b81" };

function fmtFlops(x) {
  if (x == null) return "-";
  const units = [["G", 1e9], ["M", 1e6], ["k", 1e3]];
  for (const [u, s] of units) if (x >= s) return (x / s).toFixed(2) + " " + u;
  return x.toFixed(0);
}

async function control(body) {
  const r = await fetch("api/control", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "same-origin" });
  if (!r.ok) $("status").textContent = "control refused: " + (await r.text());
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => { $("status").textContent = "live"; $("status").className = "status live"; };
  ws.onclose = () => { $("status").textContent = "disconnected; retrying"; $("status").className = "status"; setTimeout(connect, 1000); };
  ws.onmessage = (e) => update(JSON.parse(e.data));
}

function update(t) {
  state.last = t;
  $("question").textContent = t.question || "-";
  $("answer").textContent = t.answer;
  $("truth").textContent = t.truth ?? "-";
  $("confidence").textContent = t.confidence == null || !t.answer_done ? "-" : (100 * t.confidence).toFixed(0) + "%";
  $("unfamiliar").hidden = t.familiar !== false;
  $("accuracy").textContent = t.live_accuracy == null ? "-" : (100 * t.live_accuracy).toFixed(1) + "%";
  $("config").textContent = `${t.decoder} + ${t.compressor} V=${t.tokens}`;
  $("fps").textContent = t.fps.toFixed(1);
  $("frame-ms").textContent = t.frame_ms.toFixed(1);
  $("flops").textContent = fmtFlops(t.flops);
  $("budget-flops").textContent = t.budget_flops == null ? "none" : fmtFlops(t.budget_flops);
  $("pause").textContent = t.controls.paused ? "resume" : "pause";
  // The controls show what the engine runs with (another page may have changed it).
  if (document.activeElement !== $("mode")) $("mode").value = t.controls.mode;
  if (document.activeElement !== $("decoder")) $("decoder").value = t.controls.decoder ?? "auto";
  if (document.activeElement !== $("tokens")) $("tokens").value = t.controls.tokens == null ? "auto" : String(t.controls.tokens);
  if (document.activeElement !== $("latency")) {
    $("latency").value = String(t.controls.latency_ms ?? 0);
    $("latency-value").textContent = t.controls.latency_ms ? t.controls.latency_ms + " ms" : "off";
  }
  state.frameMs.push(t.frame_ms);
  if (state.frameMs.length > 200) state.frameMs.shift();
  drawLatency();
  drawLaw();
}

// The largest box of the picture's own aspect ratio inside 640 x 480: a 4:3 camera is not stretched to a square.
const PREVIEW_BOX = { w: 640, h: 480 };

function drawPreview(img) {
  const c = $("preview"), g = c.getContext("2d");
  const scale = Math.min(PREVIEW_BOX.w / img.naturalWidth, PREVIEW_BOX.h / img.naturalHeight);
  const w = Math.round(img.naturalWidth * scale), h = Math.round(img.naturalHeight * scale);
  if (c.width !== w || c.height !== h) {
    c.width = w; c.height = h;
    c.style.width = w + "px"; c.style.height = h + "px";
  }
  c.dataset.source = `${img.naturalWidth}x${img.naturalHeight}`;
  c.classList.toggle("small", scale > 2);
  g.imageSmoothingEnabled = scale <= 2;
  g.drawImage(img, 0, 0, w, h);
  drawHud();
}

// The HUD has a canvas of its own below the picture: nothing is drawn over what the camera sees.
function drawHud() {
  const c = $("hud"), g = c.getContext("2d"), t = state.last;
  g.clearRect(0, 0, c.width, c.height);
  if (!t) return;
  g.font = "13px monospace";
  const stages = Object.entries(t.timings_ms);
  const maxMs = Math.max(1, ...stages.map(([, v]) => v), t.controls.latency_ms || 0);
  stages.forEach(([name, ms], i) => {
    const y = 6 + i * 16;
    g.fillStyle = "#e6e6e6";
    g.fillText(name, 8, y + 11);
    g.fillStyle = STAGE_COLOURS[name] || "#ccc";
    g.fillRect(130, y + 2, (c.width - 230) * ms / maxMs, 10);
    g.fillStyle = "#e6e6e6";
    g.fillText(ms.toFixed(2) + " ms", c.width - 92, y + 11);
  });
  const y = 6 + stages.length * 16 + 4;
  const frac = t.budget_flops ? Math.min(1.5, t.flops / t.budget_flops) : 0;
  g.fillStyle = "#e6e6e6";
  g.fillText(`FLOPs ${fmtFlops(t.flops)} / ${t.budget_flops ? fmtFlops(t.budget_flops) : "no budget"}`, 8, y + 11);
  if (t.budget_flops) {
    g.strokeStyle = "#e6e6e6"; g.strokeRect(300, y + 2, 160, 10);
    g.fillStyle = frac > 1 ? "#ff6b81" : "#7be08a"; g.fillRect(300, y + 2, 160 * Math.min(frac, 1), 10);
  }
  g.fillStyle = "#e6e6e6";
  const truth = t.truth != null ? `   truth ${t.truth}, accuracy ${t.live_accuracy == null ? "-" : (100 * t.live_accuracy).toFixed(1) + "%"}` : "";
  g.fillText(`${t.decoder} + ${t.compressor} V=${t.tokens}   ${t.fps.toFixed(1)} fps${t.controls.paused ? "   PAUSED" : ""}${truth}`, 8, y + 29);
}

function pollPreview() {
  if (state.previewBusy) return;
  state.previewBusy = true;
  const img = new Image();
  img.onload = () => { drawPreview(img); state.previewBusy = false; };
  img.onerror = () => { state.previewBusy = false; };
  img.src = "preview?n=" + Date.now();
}

// Charts: the plot area leaves room for the axes' ticks and names and for the legend, so neither covers the data.
// Each canvas records its layout in data attributes (plot and legend boxes, axis names) for the layout tests.
function frame(c, m) { return { x: m.left, y: m.top, w: c.width - m.left - m.right, h: c.height - m.top - m.bottom }; }
function record(c, plot, legend, xName, yName) {
  c.dataset.plot = JSON.stringify(plot); c.dataset.legend = JSON.stringify(legend);
  c.dataset.xAxis = xName; c.dataset.yAxis = yName;
}
function axes(g, c, plot, xName, yName, yTicks, xTicks) {
  g.strokeStyle = "#6b7480"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(plot.x, plot.y); g.lineTo(plot.x, plot.y + plot.h); g.lineTo(plot.x + plot.w, plot.y + plot.h); g.stroke();
  g.fillStyle = "#c4cbd3"; g.font = "11px monospace";
  g.textAlign = "right";
  for (const [v, label] of yTicks) g.fillText(label, plot.x - 4, v + 4);
  g.textAlign = "center";
  for (const [v, label] of xTicks) g.fillText(label, v, plot.y + plot.h + 13);
  g.fillText(xName, plot.x + plot.w / 2, c.height - 3);
  g.save(); g.translate(10, plot.y + plot.h / 2); g.rotate(-Math.PI / 2); g.fillText(yName, 0, 0); g.restore();
  g.textAlign = "left";
}
function legendBox(g, plot, items) {
  const x = plot.x + plot.w + 10, y0 = plot.y;
  g.font = "11px monospace";
  items.forEach(([name, colour, dashed], i) => {
    const y = y0 + 6 + 16 * i;
    g.strokeStyle = colour; g.lineWidth = 2; if (dashed) g.setLineDash([4, 3]);
    g.beginPath(); g.moveTo(x, y); g.lineTo(x + 14, y); g.stroke(); g.setLineDash([]); g.lineWidth = 1;
    g.fillStyle = "#e6e6e6"; g.fillText(name, x + 18, y + 4);
  });
  const w = 18 + Math.max(...items.map(([name]) => g.measureText(name).width));
  return { x, y: y0, w, h: 16 * items.length + 4 };
}

function drawLatency() {
  const c = $("latency-chart"), g = c.getContext("2d"), xs = state.frameMs;
  g.clearRect(0, 0, c.width, c.height);
  const plot = frame(c, { left: 58, right: 120, top: 8, bottom: 32 });
  const budget = state.last?.controls.latency_ms || 0;
  const max = Math.max(1, budget, ...xs) * 1.1;
  const py = (v) => plot.y + plot.h - v / max * plot.h, px = (i) => plot.x + i * plot.w / 199;
  axes(g, c, plot, "frame (oldest to newest)", "ms", [[py(0), "0"], [py(max / 2), (max / 2).toFixed(1)], [py(max), max.toFixed(1)]],
       [[px(0), "-200"], [px(100), "-100"], [px(199), "now"]]);
  g.strokeStyle = "#6cc4ff"; g.lineWidth = 1.5; g.beginPath();
  const first = 200 - xs.length;
  xs.forEach((v, i) => { const x = px(first + i), y = py(v); i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke(); g.lineWidth = 1;
  if (budget > 0) {
    g.strokeStyle = "#ffb45e"; g.setLineDash([4, 4]); g.beginPath(); g.moveTo(plot.x, py(budget)); g.lineTo(plot.x + plot.w, py(budget)); g.stroke(); g.setLineDash([]);
  }
  const legend = legendBox(g, plot, [["frame time", "#6cc4ff", false], ["budget", "#ffb45e", true]]);
  record(c, plot, legend, "frame (oldest to newest)", "ms");
}

function drawLaw() {
  const c = $("law-chart"), g = c.getContext("2d"), pts = state.law;
  g.clearRect(0, 0, c.width, c.height);
  if (!pts.length) return;
  const plot = frame(c, { left: 58, right: 130, top: 8, bottom: 32 });
  const lx = (f) => Math.log10(f);
  const x0 = Math.min(...pts.map(p => lx(p.flops))), x1 = Math.max(...pts.map(p => lx(p.flops)));
  const y0 = Math.min(...pts.map(p => p.accuracy)), y1 = Math.max(...pts.map(p => p.accuracy));
  const px = (f) => plot.x + 6 + (lx(f) - x0) / Math.max(1e-9, x1 - x0) * (plot.w - 12);
  const py = (a) => plot.y + plot.h - 6 - (a - y0) / Math.max(1e-9, y1 - y0) * (plot.h - 12);
  const pct = (a) => (100 * a).toFixed(1) + "%";
  axes(g, c, plot, "FLOPs per frame (log scale)", "accuracy", [[py(y0), pct(y0)], [py(y1), pct(y1)]],
       [[px(10 ** x0), fmtFlops(10 ** x0)], [px(10 ** ((x0 + x1) / 2)), fmtFlops(10 ** ((x0 + x1) / 2))], [px(10 ** x1), fmtFlops(10 ** x1)]]);
  const decoders = [...new Set(pts.map(p => p.decoder))];
  const colours = ["#6cc4ff", "#ffb45e", "#7be08a", "#c792ea"];
  decoders.forEach((d, i) => {
    const line = pts.filter(p => p.decoder === d).sort((a, b) => a.flops - b.flops);
    g.strokeStyle = g.fillStyle = colours[i % colours.length];
    g.beginPath(); line.forEach((p, j) => j ? g.lineTo(px(p.flops), py(p.accuracy)) : g.moveTo(px(p.flops), py(p.accuracy))); g.stroke();
    line.forEach(p => { g.beginPath(); g.arc(px(p.flops), py(p.accuracy), 3, 0, 7); g.fill(); });
  });
  const t = state.last;
  const now = t && pts.find(p => p.decoder === t.decoder && p.tokens === t.tokens);
  if (now) { g.strokeStyle = "#fff"; g.lineWidth = 2; g.beginPath(); g.arc(px(now.flops), py(now.accuracy), 7, 0, 7); g.stroke(); g.lineWidth = 1; }
  const legend = legendBox(g, plot, decoders.map((d, i) => [d, colours[i % colours.length], false]));
  record(c, plot, legend, "FLOPs per frame (log scale)", "accuracy");
}

async function loadLaw() {
  const r = await fetch("api/law", { credentials: "same-origin" });
  if (!r.ok) return;
  state.law = await r.json();
  for (const d of [...new Set(state.law.map(p => p.decoder))]) $("decoder").add(new Option(d, d));
  for (const v of [...new Set(state.law.map(p => p.tokens))].sort((a, b) => a - b)) $("tokens").add(new Option(String(v), String(v)));
}

$("latency").addEventListener("input", () => { const v = +$("latency").value; $("latency-value").textContent = v ? v + " ms" : "off"; });
$("latency").addEventListener("change", () => control({ latency_ms: +$("latency").value }));
$("decoder").addEventListener("change", () => control({ decoder: $("decoder").value }));
$("tokens").addEventListener("change", () => control({ tokens: $("tokens").value }));
$("mode").addEventListener("change", () => control({ mode: $("mode").value }));
$("pause").addEventListener("click", () => control({ paused: !(state.last?.controls.paused) }));
$("ask-form").addEventListener("submit", (e) => { e.preventDefault(); const q = $("query").value.trim(); if (q) control({ query: q }); });

loadLaw();
connect();
setInterval(pollPreview, 1000 / 15);
