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

function drawPreview(img) {
  const c = $("preview"), g = c.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(img, 0, 0, c.width, c.height);
  const t = state.last;
  if (!t) return;
  // HUD: one bar per stage (ms), FLOPs against the budget, the configuration and fps.
  g.fillStyle = "rgba(0,0,0,0.6)";
  g.fillRect(0, 0, c.width, 150);
  g.font = "13px monospace";
  const stages = Object.entries(t.timings_ms);
  const maxMs = Math.max(1, ...stages.map(([, v]) => v), t.controls.latency_ms || 0);
  stages.forEach(([name, ms], i) => {
    const y = 8 + i * 16;
    g.fillStyle = "#ddd";
    g.fillText(name, 8, y + 11);
    g.fillStyle = STAGE_COLOURS[name] || "#ccc";
    g.fillRect(130, y + 2, (c.width - 220) * ms / maxMs, 10);
    g.fillStyle = "#ddd";
    g.fillText(ms.toFixed(2) + " ms", c.width - 85, y + 11);
  });
  const y = 8 + stages.length * 16 + 6;
  const frac = t.budget_flops ? Math.min(1.5, t.flops / t.budget_flops) : 0;
  g.fillStyle = "#ddd";
  g.fillText(`FLOPs ${fmtFlops(t.flops)} / ${t.budget_flops ? fmtFlops(t.budget_flops) : "no budget"}`, 8, y + 11);
  if (t.budget_flops) {
    g.strokeStyle = "#ddd"; g.strokeRect(260, y + 2, 160, 10);
    g.fillStyle = frac > 1 ? "#ff6b81" : "#7be08a"; g.fillRect(260, y + 2, 160 * Math.min(frac, 1), 10);
  }
  g.fillStyle = "#ddd";
  g.fillText(`${t.decoder} + ${t.compressor} V=${t.tokens}   ${t.fps.toFixed(1)} fps${t.controls.paused ? "   PAUSED" : ""}`, 8, y + 30);
  if (t.truth != null) {
    g.fillText(`truth ${t.truth}   accuracy ${t.live_accuracy == null ? "-" : (100 * t.live_accuracy).toFixed(1) + "%"}`, 8, y + 48);
  }
}

function pollPreview() {
  if (state.previewBusy) return;
  state.previewBusy = true;
  const img = new Image();
  img.onload = () => { drawPreview(img); state.previewBusy = false; };
  img.onerror = () => { state.previewBusy = false; };
  img.src = "preview?n=" + Date.now();
}

function drawLatency() {
  const c = $("latency-chart"), g = c.getContext("2d"), xs = state.frameMs;
  g.clearRect(0, 0, c.width, c.height);
  const budget = state.last?.controls.latency_ms || 0;
  const max = Math.max(1, budget, ...xs) * 1.1;
  g.strokeStyle = "#6cc4ff"; g.beginPath();
  xs.forEach((v, i) => { const x = i * c.width / 200, y = c.height - v / max * c.height; i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
  if (budget > 0) {
    const y = c.height - budget / max * c.height;
    g.strokeStyle = "#ffb45e"; g.setLineDash([4, 4]); g.beginPath(); g.moveTo(0, y); g.lineTo(c.width, y); g.stroke(); g.setLineDash([]);
  }
  g.fillStyle = "#9aa3ad"; g.font = "11px monospace"; g.fillText(max.toFixed(1) + " ms", 4, 12);
}

function drawLaw() {
  const c = $("law-chart"), g = c.getContext("2d"), pts = state.law;
  g.clearRect(0, 0, c.width, c.height);
  if (!pts.length) return;
  const lx = (f) => Math.log10(f);
  const x0 = Math.min(...pts.map(p => lx(p.flops))), x1 = Math.max(...pts.map(p => lx(p.flops)));
  const y0 = Math.min(...pts.map(p => p.accuracy)), y1 = Math.max(...pts.map(p => p.accuracy));
  const px = (f) => 30 + (lx(f) - x0) / Math.max(1e-9, x1 - x0) * (c.width - 50);
  const py = (a) => c.height - 20 - (a - y0) / Math.max(1e-9, y1 - y0) * (c.height - 40);
  const decoders = [...new Set(pts.map(p => p.decoder))];
  const colours = ["#6cc4ff", "#ffb45e", "#7be08a", "#c792ea"];
  decoders.forEach((d, i) => {
    const line = pts.filter(p => p.decoder === d).sort((a, b) => a.flops - b.flops);
    g.strokeStyle = g.fillStyle = colours[i % colours.length];
    g.beginPath(); line.forEach((p, j) => j ? g.lineTo(px(p.flops), py(p.accuracy)) : g.moveTo(px(p.flops), py(p.accuracy))); g.stroke();
    line.forEach(p => { g.beginPath(); g.arc(px(p.flops), py(p.accuracy), 3, 0, 7); g.fill(); });
    g.font = "11px monospace"; g.fillText(d, c.width - 130, 14 + 14 * i);
  });
  const t = state.last;
  const now = t && pts.find(p => p.decoder === t.decoder && p.tokens === t.tokens);
  if (now) { g.strokeStyle = "#fff"; g.lineWidth = 2; g.beginPath(); g.arc(px(now.flops), py(now.accuracy), 7, 0, 7); g.stroke(); g.lineWidth = 1; }
  g.fillStyle = "#9aa3ad"; g.font = "11px monospace";
  g.fillText((100 * y1).toFixed(1) + "%", 0, 12); g.fillText((100 * y0).toFixed(1) + "%", 0, c.height - 22);
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
