// The page of `minipixel serve` (docs/serve.md): plain JavaScript, no library, and
// nothing fetched but the server's own /api/ endpoints, so it works offline.
"use strict";

// Sub-pixels not drawn yet: the red-grey of `minipixel sample --animate`, which no
// grey level is (and no colour of fewer than 48 levels).
const UNDRAWN = [200, 70, 70];
// The field picture's colours, as `minipixel show field` draws them.
const FIELD = { target: [220, 30, 30], blind: [70, 110, 230], reach: [182, 190, 205], after: [45, 45, 45] };
// The mask picture's input colours, as `minipixel show masks` draws them.
const MASK_COLOURS = { 1: [[235, 235, 235]], 3: [[230, 80, 80], [80, 190, 90], [80, 120, 235]] };
// The NLL heat map: black (no surprise) through purple and orange to pale yellow.
const HEAT = [[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]];

const state = {
  models: [],
  methods: [],
  limits: {},
  stream: null,          // the AbortController of the sampling in flight, if any
  drawing: null,         // {height, width, values: Float32Array in [0, 1], picture: data URL or null}
  explore: null,         // {model, labels, cls, title, row, col}
  sample: null,          // the last sampling: {model, cls, labels}
  completion: null,      // the last completion: {model, cls, sent, labels, keepRows}
};
window.minipixel = state;  // for the browser test and for curious readers

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------

function showError(message) {
  const line = $("error");
  line.textContent = message;
  line.hidden = !message;
}

async function errorOf(response) {
  // A refused request answers one line of JSON, {"error": ...}; anything else is
  // shown with its status so that nothing fails silently.
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON: fall through */ }
  return `${response.status} ${response.statusText}: ${text.slice(0, 200)}`;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(await errorOf(response));
  return response.json();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function postStream(path, body, signal, status) {
  // The server runs one sampling per client and stops a cancelled one only when it
  // finds the browser gone, at one of its next frames: a request sent just after Stop
  // may find it still running (429), so it waits and asks again, for 20 s at most.
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
    });
    if (response.status !== 429 || attempt >= 80) return response;
    await response.text();
    status.textContent = "waiting for the last sampling to stop…";
    await sleep(250);
  }
}

// Read a stream of frames (NDJSON: one JSON object per line) and hand each object to
// onLine as it arrives, not when the stream ends.
async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
  buffer += decoder.decode();
  if (buffer.trim()) onLine(JSON.parse(buffer));
}

// ---------------------------------------------------------------------------
// Pictures
// ---------------------------------------------------------------------------

function grey(label, levels) {
  return Math.floor((label * 255) / (levels - 1));  // as viz.to_uint8: 0 black, levels-1 white
}

// Paint one image (H x W x C labels; drawn: H x W, or null when all are final) on a
// canvas at `scale` screen pixels per pixel; returns how many positions it painted undrawn.
function paintImage(canvas, labels, drawn, levels, scale) {
  const H = labels.length, W = labels[0].length, C = labels[0][0].length;
  const small = new ImageData(W, H);
  let undrawn = 0;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const o = 4 * (i * W + j);
      let rgb;
      if (drawn && !drawn[i][j]) { rgb = UNDRAWN; undrawn += 1; }
      else if (C === 1) { const g = grey(labels[i][j][0], levels); rgb = [g, g, g]; }
      else rgb = labels[i][j].map((v) => grey(v, levels));
      small.data[o] = rgb[0]; small.data[o + 1] = rgb[1]; small.data[o + 2] = rgb[2]; small.data[o + 3] = 255;
    }
  }
  paintSmall(canvas, small, scale);
  return undrawn;
}

// An H x W ImageData drawn scaled up with hard pixel edges.
function paintSmall(canvas, small, scale) {
  const buffer = document.createElement("canvas");
  buffer.width = small.width; buffer.height = small.height;
  buffer.getContext("2d").putImageData(small, 0, 0);
  if (canvas.width !== small.width * scale || canvas.height !== small.height * scale) {
    canvas.width = small.width * scale; canvas.height = small.height * scale;
  }
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(buffer, 0, 0, canvas.width, canvas.height);
}

function colourPicture(H, W, colourAt) {
  const small = new ImageData(W, H);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const rgb = colourAt(i, j), o = 4 * (i * W + j);
      small.data[o] = rgb[0]; small.data[o + 1] = rgb[1]; small.data[o + 2] = rgb[2]; small.data[o + 3] = 255;
    }
  }
  return small;
}

function outlineCell(canvas, row, col, scale, colour) {
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.strokeRect(col * scale + 1, row * scale + 1, scale - 2, scale - 2);
}

function heat(t) {
  const x = Math.min(Math.max(t, 0), 1) * (HEAT.length - 1);
  const k = Math.min(Math.floor(x), HEAT.length - 2), f = x - k;
  return HEAT[k].map((v, c) => Math.round(v + f * (HEAT[k + 1][c] - v)));
}

function scaleFor(H, W, target) {
  return Math.max(1, Math.floor(target / Math.max(H, W)));
}

// ---------------------------------------------------------------------------
// Models and the shared controls
// ---------------------------------------------------------------------------

function currentModel() {
  return state.models.find((m) => m.name === $("model").value) || null;
}

function chosenClass(model) {
  return model && model.classes ? Number($("class").value) : null;
}

function className(model, cls) {
  if (cls === null || cls === undefined || !model || !model.classes) return "";
  const name = model.classes[cls];
  return name !== undefined && name !== String(cls) ? `class ${cls}, ${name}` : `class ${cls}`;
}

function limit(name) {
  // Limits arrive as [lowest, highest], {min, max} or a bare highest value.
  const v = state.limits[name];
  if (Array.isArray(v)) return { min: v[0], max: v[1] };
  if (v && typeof v === "object") return { min: v.min ?? v.lowest, max: v.max ?? v.highest };
  if (typeof v === "number") return { max: v };
  return {};
}

function applyLimits() {
  for (const [name, ids] of [["n", ["watch-n", "complete-n"]], ["temperature", ["temperature"]], ["seed", ["seed"]]]) {
    const { min, max } = limit(name);
    for (const id of ids) {
      if (min !== undefined) $(id).min = min;
      if (max !== undefined) $(id).max = max;
    }
  }
}

function fillModels() {
  const select = $("model");
  select.textContent = "";
  const groups = { installed: "installed", run: "run folders" };
  for (const [source, label] of Object.entries(groups)) {
    const models = state.models.filter((m) => m.source === source);
    if (!models.length) continue;
    const group = document.createElement("optgroup");
    group.label = label;
    for (const m of models) group.append(new Option(m.name, m.name));
    select.append(group);
  }
  for (const m of state.models.filter((m) => !(m.source in groups))) select.append(new Option(m.name, m.name));
  const methods = $("method");
  methods.textContent = "";
  for (const name of state.methods) methods.append(new Option(name, name));
  if (state.methods.includes("cached")) methods.value = "cached";
  modelChanged();
}

function modelChanged() {
  const model = currentModel();
  if (!model) return;
  const classes = $("class");
  const before = classes.value;
  classes.textContent = "";
  if (model.classes) {
    model.classes.forEach((name, k) => classes.append(new Option(name === String(k) ? `${k}` : `${k} ${name}`, k)));
    if (before !== "" && Number(before) < model.classes.length) classes.value = before;
  }
  $("class-label").hidden = !model.classes;
  // The wavefront sampler runs masked PixelCNN models only (docs/sampling.md).
  for (const option of $("method").options) {
    option.disabled = option.value === "wavefront" && model.arch !== "pixelcnn";
  }
  if ($("method").selectedOptions[0]?.disabled) $("method").value = state.methods.includes("cached") ? "cached" : state.methods[0];
  const kind = model.arch === "gated" ? "Gated PixelCNN" : model.arch === "pixelcnn" ? "PixelCNN" : model.arch;
  const named = model.classes ? `, ${model.classes.length} classes` : "";
  $("model-about").textContent =
    `${kind}, ${model.height}x${model.width}x${model.channels}, ${model.levels} levels${named} (${model.source})`;
  const keep = $("keep-rows");
  keep.max = model.height - 1;
  if (Number(keep.value) > model.height - 1) keep.value = Math.floor(model.height / 2);
  $("keep-rows-value").textContent = keep.value;
  resetDrawing(model);
}

// ---------------------------------------------------------------------------
// A stream of frames into a grid of tiles (Watch, and the completions)
// ---------------------------------------------------------------------------

function setBusy(busy) {
  for (const id of ["sample", "complete"]) $(id).disabled = busy;
  for (const id of ["watch-stop", "complete-stop"]) $(id).disabled = !busy;
}

function stopStream() {
  if (state.stream) state.stream.abort();
}

// Runs one sampling request and paints its frames into `grid` as they arrive.
// The grid's data attributes say how it went: data-state (streaming, done, stopped,
// error), data-frames (frames received), data-filled and data-cells (positions drawn
// in the last frame, and in all), data-max-partial-rows (the most rows of one image
// partly drawn in one frame: 1 for a row-by-row sampler, several for the wavefront),
// data-partial-paints (frames painted while some positions were still undrawn: the
// grid fills as the sampler draws, not at the end).
async function runStream(path, body, grid, status, tiles, onFrame) {
  stopStream();
  showError("");
  const controller = new AbortController();
  state.stream = controller;
  setBusy(true);
  Object.assign(grid.dataset, { state: "streaming", frames: "0", filled: "0", cells: "0", maxPartialRows: "0", partialPaints: "0" });
  status.textContent = "starting…";
  let start = null, frames = 0, maxPartial = 0, partialPaints = 0, finished = false;
  const onLine = (line) => {
    if (line.type === "start") {
      start = line;
      grid.dataset.cells = String(line.n * line.height * line.width);
      tiles.build(line);
    } else if (line.type === "frame") {
      frames += 1;
      let filled = 0, undrawn = 0;
      line.labels.forEach((labels, k) => {
        const drawn = line.drawn[k];
        for (const row of drawn) {
          const count = row.reduce((a, d) => a + (d ? 1 : 0), 0);
          filled += count;
        }
        maxPartial = Math.max(maxPartial, drawn.filter((row) => row.some((d) => d) && !row.every((d) => d)).length);
        undrawn += paintImage(tiles.canvas(k), labels, drawn, start.levels, tiles.scale);
      });
      if (undrawn > 0 && filled > 0) partialPaints += 1;
      Object.assign(grid.dataset, {
        frames: String(frames), filled: String(filled), maxPartialRows: String(maxPartial), partialPaints: String(partialPaints),
      });
      status.textContent = `${Math.round((100 * filled) / Number(grid.dataset.cells))}% drawn, ${frames} frames`;
      onFrame(line);
    } else if (line.type === "done") {
      finished = true;
      grid.dataset.state = "done";
      status.textContent = `done in ${Number(line.seconds).toFixed(2)} s, ${frames} frames`;
    } else if (line.type === "error") {
      throw new Error(line.error);
    }
  };
  try {
    const response = await postStream(path, body, controller.signal, status);
    if (!response.ok) throw new Error(await errorOf(response));
    await readLines(response, onLine);
    if (!finished) throw new Error("the stream ended before the sampler finished");
  } catch (e) {
    if (controller.signal.aborted) {
      grid.dataset.state = "stopped";
      status.textContent = `stopped after ${frames} frames`;
    } else {
      grid.dataset.state = "error";
      status.textContent = "";
      showError(e.message);
    }
  } finally {
    if (state.stream === controller) {
      state.stream = null;
      setBusy(false);
    }
  }
}

// n tiles of canvases in `grid`, each a click target into Explore.
function tileSet(grid, targetSize, caption, explore) {
  const set = {
    scale: 1,
    canvases: [],
    build(start) {
      grid.textContent = "";
      set.canvases = [];
      set.scale = scaleFor(start.height, start.width, targetSize(start.n));
      for (let k = 0; k < start.n; k++) {
        const figure = document.createElement("figure");
        figure.className = "tile";
        const canvas = document.createElement("canvas");
        canvas.width = start.width * set.scale;
        canvas.height = start.height * set.scale;
        canvas.dataset.index = String(k);
        canvas.setAttribute("aria-label", `image ${k + 1}: click a pixel to explore it`);
        canvas.addEventListener("click", (event) => {
          const at = cellAt(canvas, event, start.height, start.width);
          explore(k, at.row, at.col);
        });
        figure.append(canvas);
        const text = caption(k);
        if (text) {
          const label = document.createElement("figcaption");
          label.textContent = text;
          figure.append(label);
        }
        grid.append(figure);
        set.canvases.push(canvas);
      }
    },
    canvas: (k) => set.canvases[k],
  };
  return set;
}

function cellAt(canvas, event, H, W) {
  const box = canvas.getBoundingClientRect();
  return {
    row: Math.min(H - 1, Math.max(0, Math.floor(((event.clientY - box.top) / box.height) * H))),
    col: Math.min(W - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * W))),
  };
}

function numberOf(id) {
  return Number($(id).value);
}

// ---------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------

function sample() {
  const model = currentModel();
  if (!model) return;
  const cls = chosenClass(model);
  const body = {
    model: model.name, n: numberOf("watch-n"), temperature: numberOf("temperature"),
    method: $("method").value, seed: numberOf("seed"), class: cls,
  };
  const grid = $("watch-grid");
  const taken = { model, cls, labels: null };
  const tiles = tileSet(grid, (n) => (n <= 4 ? 200 : n <= 16 ? 140 : 100), () => "",
    (k, row, col) => {
      if (grid.dataset.state !== "done") return;  // explore finished images only
      exploreImage({ model, cls, labels: taken.labels[k], title: `sample ${k + 1} of ${model.name}` }, row, col);
    });
  state.sample = taken;
  const heading = $("watch-status");
  runStream("/api/sample", body, grid, heading, tiles, (frame) => { taken.labels = frame.labels; })
    .then(() => { if (grid.dataset.state === "done" && cls !== null) heading.textContent += ` (${className(model, cls)})`; });
}

// ---------------------------------------------------------------------------
// Draw and complete
// ---------------------------------------------------------------------------

const DRAW_SCALE = 10;

function resetDrawing(model) {
  const d = state.drawing;
  if (!d || d.height !== model.height || d.width !== model.width) {
    state.drawing = { height: model.height, width: model.width, values: new Float32Array(model.height * model.width), picture: null };
  }
  paintDrawing();
}

function quantize(v, levels) {
  // As data.quantize: bin k holds [k / levels, (k + 1) / levels); 1.0 joins the last bin.
  return Math.min(Math.floor(v * levels), levels - 1);
}

function drawingLabels(model) {
  const d = state.drawing, C = model.channels;
  const labels = [];
  for (let i = 0; i < d.height; i++) {
    const row = [];
    for (let j = 0; j < d.width; j++) {
      const label = quantize(d.values[i * d.width + j], model.levels);
      row.push(new Array(C).fill(label));
    }
    labels.push(row);
  }
  return labels;
}

// The drawing as the model will see it (its levels), the kept rows above the line.
function paintDrawing() {
  const model = currentModel();
  const d = state.drawing;
  if (!model || !d) return;
  const canvas = $("drawing");
  paintImage(canvas, drawingLabels(model), null, model.levels, DRAW_SCALE);
  const keep = numberOf("keep-rows");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "rgba(70, 110, 200, 0.28)";  // the hidden rows, in the blue of `complete`'s hatch
  ctx.fillRect(0, keep * DRAW_SCALE, canvas.width, canvas.height - keep * DRAW_SCALE);
  ctx.fillStyle = "rgb(250, 200, 0)";
  ctx.fillRect(0, keep * DRAW_SCALE - 1, canvas.width, 2);
  canvas.dataset.rows = String(d.height);
  canvas.dataset.ink = String(d.values.reduce((a, v) => a + (v > 0 ? 1 : 0), 0));
}

// A pen about two pixels wide, soft at its edges, like the digits of MNIST.
function ink(i, j) {
  const d = state.drawing;
  for (let di = -1; di <= 1; di++) {
    for (let dj = -1; dj <= 1; dj++) {
      const y = i + di, x = j + dj;
      if (y < 0 || x < 0 || y >= d.height || x >= d.width) continue;
      const v = di === 0 && dj === 0 ? 1 : di === 0 || dj === 0 ? 0.8 : 0.35;
      d.values[y * d.width + x] = Math.max(d.values[y * d.width + x], v);
    }
  }
}

function setUpDrawing() {
  const canvas = $("drawing");
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return {
      y: ((event.clientY - box.top) / box.height) * state.drawing.height - 0.5,
      x: ((event.clientX - box.left) / box.width) * state.drawing.width - 0.5,
    };
  };
  const strokeTo = (p) => {
    // Every cell along the segment from the last point, so a fast stroke stays whole.
    const from = last || p;
    const steps = Math.max(1, Math.ceil(2 * Math.hypot(p.x - from.x, p.y - from.y)));
    for (let s = 0; s <= steps; s++) {
      const t = s / steps;
      ink(Math.round(from.y + t * (p.y - from.y)), Math.round(from.x + t * (p.x - from.x)));
    }
    last = p;
    state.drawing.picture = null;  // drawn on: the labels go, not the picture
    paintDrawing();
  };
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture?.(event.pointerId);
    last = null;
    strokeTo(at(event));
  });
  canvas.addEventListener("pointermove", (event) => { if (last) strokeTo(at(event)); });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  $("clear").addEventListener("click", () => {
    state.drawing.values.fill(0);
    state.drawing.picture = null;
    paintDrawing();
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) loadPicture(file);
  });
  $("picture").addEventListener("change", (event) => {
    if (event.target.files[0]) loadPicture(event.target.files[0]);
  });
  $("keep-rows").addEventListener("input", () => {
    $("keep-rows-value").textContent = $("keep-rows").value;
    paintDrawing();
  });
}

// A picture is scaled to the model's size here (on black, as a picture without
// transparency), sent as a PNG and converted by the server as `complete --image`
// converts a file; the canvas shows the same conversion (Pillow's grey, then the
// model's levels).
function loadPicture(file) {
  const reader = new FileReader();
  reader.onerror = () => showError(`${file.name}: could not be read`);
  reader.onload = () => {
    const img = new Image();
    img.onerror = () => showError(`${file.name}: not a picture this browser can read`);
    img.onload = () => {
      const d = state.drawing;
      const canvas = document.createElement("canvas");
      canvas.width = d.width; canvas.height = d.height;
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "black";
      ctx.fillRect(0, 0, d.width, d.height);
      ctx.drawImage(img, 0, 0, d.width, d.height);
      const px = ctx.getImageData(0, 0, d.width, d.height).data;
      for (let k = 0; k < d.width * d.height; k++) {
        const g = (px[4 * k] * 19595 + px[4 * k + 1] * 38470 + px[4 * k + 2] * 7471 + 0x8000) >> 16;  // Pillow's "L"
        d.values[k] = g / 255;
      }
      d.picture = canvas.toDataURL("image/png");
      showError("");
      paintDrawing();
    };
    img.src = reader.result;
  };
  reader.readAsDataURL(file);
}

function complete() {
  const model = currentModel();
  if (!model) return;
  const cls = chosenClass(model);
  const sent = drawingLabels(model);
  const keepRows = numberOf("keep-rows");
  const body = {
    model: model.name, image: state.drawing.picture || sent, keep_rows: keepRows, n: numberOf("complete-n"),
    temperature: numberOf("temperature"), method: $("method").value, seed: numberOf("seed"), class: cls,
  };
  const grid = $("completions");
  const taken = { model, cls, sent, keepRows, labels: null };
  state.completion = taken;
  const tiles = tileSet(grid, (n) => (n <= 4 ? 168 : n <= 16 ? 112 : 84), (k) => `completion ${k + 1}`,
    (k, row, col) => {
      if (grid.dataset.state !== "done") return;
      exploreImage({ model, cls, labels: taken.labels[k], title: `completion ${k + 1} of the drawing` }, row, col);
    });
  runStream("/api/complete", body, grid, $("complete-status"), tiles, (frame) => { taken.labels = frame.labels; });
}

// ---------------------------------------------------------------------------
// Explore
// ---------------------------------------------------------------------------

const EXPLORE_SCALE = 12;
const FIELD_SCALE = 9;

function showView(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const on = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(on));
    $(`view-${tab.dataset.view}`).hidden = !on;
  }
}

async function exploreImage(image, row, col) {
  state.explore = { ...image, row: null, col: null };
  showView("explore");
  $("explore-empty").hidden = true;
  $("explore-body").hidden = false;
  $("channel-label").hidden = image.model.channels !== 3;
  const named = image.cls !== null && image.cls !== undefined ? `, ${className(image.model, image.cls)}` : "";
  $("explore-caption").textContent = `${image.title}${named}: click a pixel`;
  paintExplored();
  clearPixelViews();
  const pending = showNll(image);
  if (row !== undefined) await explorePixel(row, col);
  await pending;
}

function paintExplored() {
  const e = state.explore;
  const canvas = $("explore-image");
  paintImage(canvas, e.labels, null, e.model.levels, EXPLORE_SCALE);
  if (e.row !== null) outlineCell(canvas, e.row, e.col, EXPLORE_SCALE, "rgb(220, 30, 30)");
}

function clearPixelViews() {
  $("distribution").textContent = "";
  $("distribution").dataset.levels = "0";
  for (const arch of ["pixelcnn", "gated"]) {
    const canvas = $(`field-${arch}`);
    canvas.width = 0; canvas.height = 0;
    delete canvas.dataset.row;
  }
}

async function showNll(image) {
  const map = $("nll-map"), total = $("nll-total");
  total.textContent = "";
  total.dataset.total = "";
  try {
    const answer = await api("/api/nll", { model: image.model.name, image: image.labels, class: image.cls });
    if (state.explore?.labels !== image.labels) return;  // another image was chosen meanwhile
    const nll = answer.nll, H = nll.length, W = nll[0].length;
    const top = Math.max(...nll.flat(), 1e-9);
    paintSmall(map, colourPicture(H, W, (i, j) => heat(nll[i][j] / top)), EXPLORE_SCALE);
    const scale = $("nll-scale");
    scale.width = 256; scale.height = 1;
    paintSmall(scale, colourPicture(1, 256, (i, j) => heat(j / 255)), 1);
    $("nll-min").textContent = "0";
    $("nll-max").textContent = `${top.toFixed(2)} nats`;
    total.dataset.total = String(answer.total);
    total.textContent = `Total: ${Number(answer.total).toFixed(2)} nats (${Number(answer.bits_per_dim).toFixed(4)} bits/dim).`;
  } catch (e) {
    showError(e.message);
  }
}

async function explorePixel(row, col) {
  const e = state.explore;
  if (!e) return;
  const channel = e.model.channels === 3 ? Number($("channel").value) : 0;
  e.row = row; e.col = col;
  paintExplored();
  showError("");
  const fields = ["pixelcnn", "gated"].map((arch) =>
    api("/api/field", { arch, row, col, channel }).then((answer) => paintField(arch, answer)));
  const distribution = api("/api/distribution",
    { model: e.model.name, image: e.labels, row, col, channel, class: e.cls })
    .then((answer) => paintDistribution(answer.probabilities, e.labels[row][col][channel], row, col));
  const results = await Promise.allSettled([...fields, distribution]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(failed.reason.message);
}

// The receptive field: red the target, green the inputs that reach it (brighter:
// more, on a log scale), blue the earlier inputs inside its reach that it cannot see
// (PixelCNN's blind spot), grey-blue the earlier ones out of its reach, dark the later ones.
function paintField(arch, answer) {
  const field = answer.field, H = field.length, W = field[0].length;
  const ti = answer.row, tj = answer.col;
  let top = H, left = W, right = -1, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      if (field[i][j] > 0) {
        top = Math.min(top, i); left = Math.min(left, j); right = Math.max(right, j);
        const l = Math.log10(field[i][j]);
        lo = Math.min(lo, l); hi = Math.max(hi, l);
      }
    }
  }
  let seen = 0, blind = 0;
  const small = colourPicture(H, W, (i, j) => {
    if (i === ti && j === tj) return FIELD.target;
    if (field[i][j] > 0) {
      seen += 1;
      const t = 0.35 + 0.65 * (hi > lo ? (Math.log10(field[i][j]) - lo) / (hi - lo) : 1);
      return [Math.round(20 * t), Math.round(230 * t), Math.round(60 * t)];
    }
    if (i > ti || (i === ti && j > tj)) return FIELD.after;
    if (i >= top && j >= left && j <= right) { blind += 1; return FIELD.blind; }
    return FIELD.reach;
  });
  const canvas = $(`field-${arch}`);
  paintSmall(canvas, small, FIELD_SCALE);
  Object.assign(canvas.dataset, { row: String(ti), col: String(tj), seen: String(seen), blind: String(blind) });
  const name = arch === "gated" ? "Gated PixelCNN" : "PixelCNN";
  $(`field-${arch}-caption`).textContent = blind
    ? `${name}: ${seen} inputs reach row ${ti}, column ${tj}; ${blind} earlier ones inside that reach cannot (the blind spot).`
    : `${name}: ${seen} inputs reach row ${ti}, column ${tj}; no blind spot.`;
}

function paintDistribution(probabilities, actual, row, col) {
  const box = $("distribution");
  box.textContent = "";
  box.dataset.levels = String(probabilities.length);
  const top = Math.max(...probabilities, 1e-12);
  const labelEvery = Math.ceil(probabilities.length / 16);
  probabilities.forEach((p, level) => {
    const bar = document.createElement("div");
    bar.className = level === actual ? "bar actual" : "bar";
    bar.dataset.level = String(level);
    bar.dataset.p = String(p);
    bar.title = `level ${level}: ${(100 * p).toFixed(1)}%`;
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.height = `${(100 * p) / top}%`;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = probabilities.length <= 16 ? `${(100 * p).toFixed(p < 0.1 ? 1 : 0)}%` : "";
    const label = document.createElement("span");
    label.className = "level";
    label.textContent = level % labelEvery === 0 ? String(level) : "";
    bar.append(value, fill, label);
    box.append(bar);
  });
  const p = probabilities[actual];
  $("distribution-caption").textContent =
    `Row ${row}, column ${col}: the model's distribution over the levels given every pixel before it. ` +
    `This image has level ${actual} there (highlighted): p = ${p.toFixed(3)}, ${(-Math.log(p)).toFixed(2)} nats.`;
}

// ---------------------------------------------------------------------------
// The masks
// ---------------------------------------------------------------------------

async function showMasks() {
  const kernel = Number($("mask-kernel").value), colors = Number($("mask-colors").value);
  try {
    const answer = await api(`/api/masks?kernel=${kernel}&colors=${colors}`);
    const box = $("masks");
    box.textContent = "";
    for (const type of ["A", "B"]) {
      const figure = document.createElement("figure");
      figure.className = "panel";
      const canvas = document.createElement("canvas");
      canvas.id = `mask-${type}`;
      canvas.setAttribute("aria-label", `mask ${type}`);
      paintMask(canvas, answer[type], colors);
      const caption = document.createElement("figcaption");
      caption.textContent = `mask ${type}` + (colors === 3 ? ": rows the output colour, columns the input" : "");
      figure.append(canvas, caption);
      box.append(figure);
    }
    Object.assign(box.dataset, { kernel: String(kernel), colors: String(colors) });
  } catch (e) {
    showError(e.message);
  }
}

// mask[ky][kx][in][out]: one small kernel per (output colour, input colour) pair.
function paintMask(canvas, mask, colors) {
  const K = mask.length, cell = Math.max(8, Math.floor(120 / K)), gap = 12, names = ["R", "G", "B"];
  const block = K * cell + gap, label = colors === 3 ? 22 : 0;
  canvas.width = label + colors * block - gap;
  canvas.height = label + colors * block - gap;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = "12px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let o = 0; o < colors; o++) {
    for (let i = 0; i < colors; i++) {
      const x0 = label + i * block, y0 = label + o * block;
      if (colors === 3) {
        ctx.fillStyle = "#333";
        if (o === 0) ctx.fillText(`in ${names[i]}`, x0 + (K * cell) / 2, label / 2);
        if (i === 0) ctx.fillText(names[o], label / 2, y0 + (K * cell) / 2);
      }
      for (let ky = 0; ky < K; ky++) {
        for (let kx = 0; kx < K; kx++) {
          const live = mask[ky][kx][i][o] > 0;
          const rgb = live ? MASK_COLOURS[colors][i] : [60, 60, 60];
          ctx.fillStyle = `rgb(${rgb.join(",")})`;
          ctx.fillRect(x0 + kx * cell, y0 + ky * cell, cell - 2, cell - 2);
        }
      }
      const c = Math.floor(K / 2);
      ctx.strokeStyle = "rgb(250, 200, 0)";
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 + c * cell - 1, y0 + c * cell - 1, cell, cell);
    }
  }
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

async function start() {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("model").addEventListener("change", modelChanged);
  $("sample").addEventListener("click", sample);
  $("complete").addEventListener("click", complete);
  $("watch-stop").addEventListener("click", stopStream);
  $("complete-stop").addEventListener("click", stopStream);
  $("explore-image").addEventListener("click", (event) => {
    const e = state.explore;
    if (!e) return;
    const at = cellAt($("explore-image"), event, e.labels.length, e.labels[0].length);
    explorePixel(at.row, at.col);
  });
  $("channel").addEventListener("change", () => {
    const e = state.explore;
    if (e && e.row !== null) explorePixel(e.row, e.col);
  });
  $("mask-kernel").addEventListener("change", showMasks);
  $("mask-colors").addEventListener("change", showMasks);
  setUpDrawing();
  $("explore-drawing").addEventListener("click", () => {
    const model = currentModel();
    if (model) exploreImage({ model, cls: chosenClass(model), labels: drawingLabels(model), title: "the drawing" });
  });
  showMasks();
  try {
    const answer = await api("/api/models");
    state.models = answer.models;
    state.methods = answer.methods;
    state.limits = answer.limits || {};
    if (!state.models.length) showError("no models: install one, or start the server with --models DIR");
    applyLimits();
    fillModels();
    document.body.dataset.ready = "true";
  } catch (e) {
    showError(`the model list could not be read: ${e.message}`);
  }
}

start();
