// rtstyle control page. Every request is same-origin and authenticated by the HttpOnly cookie the
// server set on the first visit to /?token=...; this script never sees the token.
"use strict";

const $ = (sel) => document.querySelector(sel);
let status = null;   // the last GET /status
let models = [];     // GET /models

// Keep the token out of the address bar, history and screenshots once the cookie holds it.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", "/");

function say(text, isError = false) {
  const m = $("#message");
  m.textContent = text;
  m.classList.toggle("error", isError);
}

async function post(path, body, raw) {
  const init = raw === undefined
    ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) }
    : { method: "POST", headers: { "Content-Type": raw.type || "application/octet-stream" }, body: raw };
  const r = await fetch(path, init);
  const reply = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(reply.error || `${r.status} ${r.statusText}`);
  return reply;
}

async function command(label, path, body, raw) {
  say(`${label}…`);
  try {
    const reply = await post(path, body, raw);
    say(reply.style ? `${label}: ${reply.style}` : `${label}: done`);
    await refreshStatus();
  } catch (e) {
    say(`${label}: ${e.message}`, true);
  }
}

const crossfade = () => Number($("#crossfade").value);

function switchTo(model, extra) {
  const body = Object.assign({ crossfade: crossfade() }, extra);
  if (!status || status.model !== model.name) body.model = model.name;
  if (model.needs_style_image && !body.style_image) {
    const path = $("#style-path").value.trim();
    if (path) body.style_image = path;
  }
  return command(`switch to ${model.name}${extra && extra.style ? " · " + extra.style : ""}`, "/style", body);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function renderModels() {
  const box = $("#models");
  box.replaceChildren();
  for (const m of models) {
    const pick = el("button", { type: "button", class: "model-pick", dataset: { model: m.name } });
    if (m.thumb) pick.append(el("img", { src: `/thumb/${encodeURIComponent(m.thumb)}.jpg`, alt: m.thumb, loading: "lazy" }));
    pick.append(el("div", {}, el("div", { class: "name" }, m.name),
      el("div", { class: "desc" }, (m.needs_style_image ? "style image · " : "") + (m.description || m.family))));
    pick.addEventListener("click", () => switchTo(m));
    const card = el("div", { class: "model", dataset: { model: m.name } }, pick);
    if (m.bank.length) {
      const bank = el("div", { class: "bank" });
      const known = new Set(m.thumbs);
      for (const s of m.bank) {
        const tile = el("button", { type: "button", class: "style-tile", title: s, dataset: { model: m.name, style: s } });
        tile.append(known.has(s)
          ? el("img", { src: `/thumb/${encodeURIComponent(s)}.jpg`, alt: s, loading: "lazy" })
          : el("div", { class: "swatch" }, s.slice(0, 2)));
        tile.append(el("span", {}, s.replace(/_/g, " ")));
        tile.addEventListener("click", () => switchTo(m, { style: s }));
        bank.append(tile);
      }
      card.append(bank);
    }
    box.append(card);
  }
  markActive();
}

function markActive() {
  if (!status) return;
  for (const card of document.querySelectorAll(".model")) card.classList.toggle("active", card.dataset.model === status.model);
  for (const t of document.querySelectorAll(".style-tile")) {
    t.classList.toggle("active", t.dataset.model === status.model && t.dataset.style === status.bank_style);
  }
}

function showSlider(name, value, digits) {
  const row = $(`#${name}-row`), input = $(`#${name}`);
  row.hidden = value === undefined;
  if (value === undefined || document.activeElement === input) return;
  input.value = value;
  $(`#${name}-out`).textContent = Number(value).toFixed(digits);
}

const fmt = (v, unit = "") => (v === null || v === undefined ? "–" : `${v}${unit}`);

async function refreshStatus() {
  let s;
  try {
    const r = await fetch("/status");
    if (!r.ok) throw new Error((await r.json()).error || r.statusText);
    s = await r.json();
  } catch (e) {
    say(`status: ${e.message}`, true);
    return;
  }
  status = s;
  $("#now-model").textContent = s.model;
  $("#now-style").textContent = s.bank_style || s.style;
  $("#stat-fps").textContent = s.fps.toFixed(1);
  $("#stat-p50").textContent = fmt(s.latency_ms_p50, " ms");
  $("#stat-p95").textContent = fmt(s.latency_ms_p95, " ms");
  $("#stat-dropped").textContent = s.frames_dropped;
  $("#stat-swaps").textContent = s.swaps;
  $("#stat-frames").textContent = s.frames_out;
  $("#pause").textContent = s.paused ? "resume" : "pause";
  $("#stop").disabled = !s.running;
  if (!s.running) say("the run has stopped");
  showSlider("alpha", s.controls.alpha, 2);
  showSlider("brush", s.controls.brush, 0);
  markActive();
}

// The preview: the next JPEG is asked for once the last one has loaded, so a slow link never queues.
let previewN = 0;
function nextPreview() { $("#preview").src = `/preview.jpg?n=${previewN++}`; }

function wire() {
  $("#next").addEventListener("click", () => command("next", "/next", { wait: true }));
  $("#previous").addEventListener("click", () => command("previous", "/previous", { wait: true }));
  $("#pause").addEventListener("click", () => command(status && status.paused ? "resume" : "pause", "/pause"));
  $("#stop").addEventListener("click", () => command("stop", "/stop"));
  for (const [name, digits] of [["alpha", 2], ["brush", 0], ["crossfade", 0]]) {
    const input = $(`#${name}`);
    input.addEventListener("input", () => { $(`#${name}-out`).textContent = Number(input.value).toFixed(digits); });
  }
  for (const name of ["alpha", "brush"]) {
    $(`#${name}`).addEventListener("change", (ev) => {
      command(`${name} ${ev.target.value}`, "/style", { options: { [name]: Number(ev.target.value) }, crossfade: crossfade() });
    });
  }
  $("#use-path").addEventListener("click", () => {
    const path = $("#style-path").value.trim();
    if (path) command(`style image ${path}`, "/style", { style_image: path, crossfade: crossfade() });
  });
  $("#style-file").addEventListener("change", (ev) => {
    const f = ev.target.files[0];
    if (f) command(`style image ${f.name}`, `/style/image?crossfade=${crossfade()}`, undefined, f);
  });
  const img = $("#preview");
  img.addEventListener("load", () => setTimeout(nextPreview, 100));
  img.addEventListener("error", () => setTimeout(nextPreview, 1000));
}

async function start() {
  wire();
  await refreshStatus();
  try {
    const r = await fetch("/models");
    models = (await r.json()).models || [];
  } catch (e) {
    say(`models: ${e.message}`, true);
  }
  renderModels();
  nextPreview();
  setInterval(refreshStatus, 500);
}

start();
