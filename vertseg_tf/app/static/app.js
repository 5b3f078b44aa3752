// vertseg-tf app page: open a film, click the centres, draw the outlines the server returns.
// Plain browser JavaScript, no build step; every request goes to the same local server.
"use strict";

const LEVELS = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6",
                "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"];
const SVG = "http://www.w3.org/2000/svg";

// The page's state, readable from a console or a browser test as window.vertseg.
const state = {
  info: null, image: null, centres: [], history: [], selected: -1, result: null,
  requests: 0, busy: false, lastMs: null,
};
window.vertseg = state;

const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the vertseg-tf server cannot be reached (" + error.message + ")");
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    throw new Error((body && body.error) || ("HTTP " + response.status));
  }
  return body;
}

function labels() {
  const start = LEVELS.indexOf($("first-level").value);
  return state.centres.map((_, k) => LEVELS[start + k] || "?");
}

function sortCentres() {
  const selected = state.centres[state.selected];
  state.centres.sort((a, b) => a[1] - b[1]);
  state.selected = selected ? state.centres.indexOf(selected) : -1;
}

function remember() {
  state.history.push(state.centres.map((c) => c.slice()));
  if (state.history.length > 200) state.history.shift();
}

function changed() {
  sortCentres();
  drawCentres();
  $("undo").disabled = state.history.length === 0;
  $("clear").disabled = state.centres.length === 0;
  segment();
}

function imagePoint(event) {
  const svg = $("overlay");
  const point = svg.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  const p = point.matrixTransform(svg.getScreenCTM().inverse());
  return [Math.round(p.x * 100) / 100, Math.round(p.y * 100) / 100];
}

function pixelSize() {
  return state.image.width / Math.max($("film").clientWidth, 1);
}

function fitFilm() {
  // Show the whole film as large as the window allows, small films enlarged too.
  if (!state.image) return;
  const viewer = $("viewer");
  const height = window.innerHeight - viewer.getBoundingClientRect().top - 16;
  const scale = Math.min(viewer.clientWidth / state.image.width, height / state.image.height);
  $("film").style.width = Math.max(Math.floor(state.image.width * scale), 50) + "px";
  drawCentres();
}

function drawCentres() {
  const group = $("centres");
  group.replaceChildren();
  const names = labels();
  const radius = 5 * pixelSize();
  state.centres.forEach(([x, y], k) => {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", x);
    dot.setAttribute("cy", y);
    dot.setAttribute("r", radius);
    dot.dataset.index = k;
    if (k === state.selected) dot.classList.add("selected");
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", x + 2 * radius);
    text.setAttribute("y", y + radius);
    text.setAttribute("font-size", 14 * pixelSize());
    text.textContent = names[k];
    group.append(dot, text);
  });
}

function drawResult() {
  const group = $("outlines");
  group.replaceChildren();
  const result = state.result;
  $("overlay").dataset.resultId = result ? result.result_id : "";
  for (const vertebra of result ? result.vertebrae : []) {
    if (!vertebra.contour.length) continue;
    const outline = document.createElementNS(SVG, "polygon");
    outline.setAttribute("points", vertebra.contour.map((p) => p.join(",")).join(" "));
    outline.dataset.label = vertebra.label;
    if (vertebra.flags.length) outline.classList.add("flagged");
    group.append(outline);
  }
  drawTable();
  for (const [id, name] of [["download-json", "dataset.json"], ["download-csv",
    "measurements.csv"], ["download-png", "overlay.png"]]) {
    const link = $(id);
    link.classList.toggle("disabled", !result);
    if (result) link.href = result.downloads[name]; else link.removeAttribute("href");
  }
}

function number(value) {
  return value === null || value === undefined ? "" : Number(value).toFixed(1);
}

function drawTable() {
  const body = $("readouts").tBodies[0];
  body.replaceChildren();
  const result = state.result;
  if (!result) { $("column").textContent = ""; return; }
  for (const vertebra of result.vertebrae) {
    const m = vertebra.measurements;
    const row = body.insertRow();
    const grade = m ? (m.genant_grade > 0 ? m.genant_grade + " " + m.fracture_type : "0") : "";
    [vertebra.label, m && number(m.ha), m && number(m.hm), m && number(m.hp), grade,
     vertebra.flags.join(", ") || (m ? "" : "not measured")].forEach((text) => {
      row.insertCell().textContent = text || "";
    });
    if (vertebra.flags.length) row.classList.add("flagged");
    if (m && m.genant_grade > 0) row.classList.add("graded");
  }
  const column = result.column;
  const lordosis = column.lordosis_c3_c7_deg;
  $("column").textContent = "heights in " + column.unit + "; facing " + column.facing +
    " (" + column.facing_source + "); C3-C7 lordosis " +
    (lordosis === null ? "needs C3 and C7" : lordosis.toFixed(1) + " deg");
}

let pending = null;
function segment() {
  clearTimeout(pending);
  if (state.centres.length < 2) {
    state.result = null;
    drawResult();
    $("status").textContent = state.image
      ? "Click the vertebra centres (at least two)." : "No film open.";
    return;
  }
  pending = setTimeout(sendSegment, 60);
}

async function sendSegment() {
  const request = ++state.requests;
  const form = new FormData();
  form.append("image_id", state.image.image_id);
  form.append("centers", JSON.stringify(state.centres));
  form.append("first_level", $("first-level").value);
  const started = performance.now();
  state.busy = true;
  $("status").textContent = "Segmenting " + state.centres.length + " vertebrae...";
  try {
    const result = await api("/segment", {method: "POST", body: form});
    if (request !== state.requests) return;  // a newer click superseded this answer
    state.result = result;
    drawResult();
    state.lastMs = performance.now() - started;
    const flagged = result.vertebrae.filter((v) => v.flags.length).length;
    $("status").textContent = result.vertebrae.length + " outlines in " +
      Math.round(state.lastMs) + " ms" + (flagged ? ", " + flagged + " flagged" : "") + ".";
    showError("");
  } catch (error) {
    if (request === state.requests) showError(error.message);
  } finally {
    if (request === state.requests) state.busy = false;
  }
}

function windowUrl() {
  return "/images/" + state.image.image_id + "/view.png?level=" + $("level").value +
    "&width=" + $("width").value;
}

let pendingWindow = null;
function windowChanged() {
  clearTimeout(pendingWindow);
  pendingWindow = setTimeout(() => { $("film").src = windowUrl(); }, 80);
}

async function openFile(file) {
  const limit = state.info && state.info.max_upload_bytes;
  if (limit && file.size > limit) {
    showError(file.name + ": " + (file.size / 1e6).toFixed(1) + " MB is over the limit of " +
              (limit / 1e6).toFixed(1) + " MB (vertseg-tf app --max-upload-mb)");
    return;
  }
  const form = new FormData();
  form.append("image", file, file.name);
  $("status").textContent = "Opening " + file.name + "...";
  let image;
  try {
    image = await api("/images", {method: "POST", body: form});
  } catch (error) {
    showError(error.message);
    $("status").textContent = state.image ? "Still showing " + state.image.name + "." :
      "No film open.";
    return;
  }
  showError("");
  Object.assign(state, {image, centres: [], history: [], selected: -1, result: null});
  const [low, high] = image.range;
  const span = Math.max(high - low, 1e-6);
  for (const [id, min, max, value] of [["level", low, high, image.window.level],
                                       ["width", span / 100, span * 2, image.window.width]]) {
    const input = $(id);
    Object.assign(input, {min, max, value, disabled: false});
  }
  const film = $("film");
  film.onload = fitFilm;
  film.src = windowUrl();
  $("overlay").setAttribute("viewBox", "0 0 " + image.width + " " + image.height);
  $("stage").hidden = false;
  $("empty").hidden = true;
  $("find").disabled = false;
  document.title = "vertseg-tf: " + image.name;
  changed();
}

function deleteCentre(index) {
  if (index < 0 || index >= state.centres.length) return;
  remember();
  state.centres.splice(index, 1);
  state.selected = -1;
  changed();
}

function undo() {
  if (!state.history.length) return;
  state.centres = state.history.pop();
  state.selected = -1;
  changed();
}

function step(offset) {
  const count = state.centres.length;
  if (!count) return;
  state.selected = state.selected < 0 ? (offset > 0 ? 0 : count - 1)
    : (state.selected + offset + count) % count;
  drawCentres();
}

let drag = null;
function pointerDown(event) {
  if (!state.image || event.button !== 0) return;
  const index = event.target.dataset.index;
  if (index === undefined) {
    remember();
    state.centres.push(imagePoint(event));
    state.selected = state.centres.length - 1;
    changed();
    return;
  }
  state.selected = Number(index);
  drag = {index: Number(index), before: state.centres.map((c) => c.slice()), moved: false};
  $("overlay").setPointerCapture(event.pointerId);
  drawCentres();
}

function pointerMove(event) {
  if (!drag) return;
  state.centres[drag.index] = imagePoint(event);
  drag.moved = true;
  drawCentres();
}

function pointerUp() {
  if (!drag) return;
  if (drag.moved) {
    state.history.push(drag.before);
    changed();
  }
  drag = null;
}

function key(event) {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  const k = event.key.toLowerCase();
  if ((k === "z" && (event.ctrlKey || event.metaKey)) || k === "u") undo();
  else if (k === "n" || k === "arrowdown") step(1);
  else if (k === "p" || k === "arrowup") step(-1);
  else if (k === "delete" || k === "backspace") deleteCentre(state.selected);
  else if (k === "escape") { state.selected = -1; drawCentres(); }
  else return;
  event.preventDefault();
}

async function find() {
  const form = new FormData();
  form.append("image_id", state.image.image_id);
  try {
    const answer = await api("/find", {method: "POST", body: form});
    remember();
    state.centres = answer.centers;
    if (answer.labels && answer.labels.length) $("first-level").value = answer.labels[0];
    changed();
  } catch (error) {
    showError(error.message);
  }
}

async function start() {
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) openFile(e.target.files[0]); });
  $("level").addEventListener("input", windowChanged);
  $("width").addEventListener("input", windowChanged);
  $("first-level").addEventListener("change", changed);
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", () => { remember(); state.centres = []; changed(); });
  $("find").addEventListener("click", find);
  const overlay = $("overlay");
  overlay.addEventListener("pointerdown", pointerDown);
  overlay.addEventListener("pointermove", pointerMove);
  overlay.addEventListener("pointerup", pointerUp);
  overlay.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    if (event.target.dataset.index !== undefined) deleteCentre(Number(event.target.dataset.index));
  });
  window.addEventListener("resize", fitFilm);
  document.addEventListener("keydown", key);
  try {
    state.info = await api("/api/info");
    $("find").hidden = !state.info.find;
    $("model").textContent = "vertseg-tf " + state.info.version + ", model " + state.info.model;
  } catch (error) {
    showError(error.message);
  }
}

start();
