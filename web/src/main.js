// Kizuna common operational picture: one nation's picture on an offline map.
//
// Everything the page needs is in this bundle or comes from the COP server on the same origin:
// the basemap is Natural Earth (world-atlas TopoJSON, public domain) converted to GeoJSON here,
// the style has only GeoJSON sources and no text layers (so no glyph or sprite requests), and the
// track symbols are drawn by milsymbol into map images, one per SIDC, when the map first asks.
//
// Smooth at 5,000 tracks (benchmarks/bench_cop.py): the main thread never handles the picture's
// features. MapLibre's web worker fetches /api/picture/geojson itself (setData with a URL); the
// page loads only the compact column picture (/api/picture/columns) for its table, which draws
// just the rows in view; filters and the selected ring are layer filters, not new data.
import maplibregl from "maplibre-gl";
import ms from "milsymbol";
import { feature, mesh } from "topojson-client";
import land50 from "world-atlas/land-50m.json";
import countries110 from "world-atlas/countries-110m.json";

const $ = (id) => document.getElementById(id);
const EMPTY = { type: "FeatureCollection", features: [] };
const IDLE_TIMEOUT_MS = 30_000;
const ROW_PX = 18; // fixed table row height (style.css), so the visible rows follow from scrollTop
const OVERSCAN_ROWS = 8; // rows drawn beyond the visible ones, so fast scrolling shows no gap

// Identity (kizuna.scenario.Identity) → MIL-STD-2525C standard identity letter.
const AFFILIATION = {
  hostile: "H", suspect: "S", unknown: "U", neutral: "N", assumed_friend: "A", friend: "F",
};
// Category → 2525C air-dimension function id (letter SIDC positions 5-10).
const FUNCTION_ID = {
  air: "------", // air track, generic
  cruise: "WMCM--", // weapon / missile in flight / cruise missile
  ballistic: "WMB---", // weapon / missile in flight / ballistic missile
  unknown: "------",
};

const state = {
  nations: [],
  times: [],
  epoch: null,
  mode: "replay",
  nation: null,
  t: null,
  picture: decodePicture(null),
  visible: [], // row indices of the picture that pass the filters, in table order
  warnings: [],
  selected: null,
  playing: false,
  socket: null,
  filters: { category: "", identity: "", source: "" },
  timing: {}, // milliseconds of the last update, by stage (benchmarks/bench_cop.py reads it)
};

// Symbol images are named "identity|category" (the map's icon-image expression); the map asks for
// each name once (styleimagemissing) and keeps it: one milsymbol drawing per SIDC, never per track.
function sidc(identity, category) {
  const aff = AFFILIATION[identity] || "P"; // P: pending
  return `S${aff}AP${FUNCTION_ID[category] || "------"}*****`;
}

function addSymbolImage(map, name) {
  const [identity, category] = name.split("|");
  const canvas = new ms.Symbol(sidc(identity, category), { size: 18 }).asCanvas(2);
  const ctx = canvas.getContext("2d");
  map.addImage(name, ctx.getImageData(0, 0, canvas.width, canvas.height), { pixelRatio: 2 });
}

// The column picture (/api/picture/columns) with its coded text columns expanded to arrays.
function decodePicture(cols) {
  if (!cols) {
    return { nation: null, time: null, n: 0, track_number: [], lat_deg: [], lon_deg: [], alt_m: [], course_deg: [],
      speed_mps: [], quality: [], category: [], identity: [], contributing_nations: [], label: [] };
  }
  const expand = (coded) => coded.codes.map((k) => coded.values[k]);
  return {
    ...cols,
    category: expand(cols.category), identity: expand(cols.identity),
    contributing_nations: expand(cols.contributing_nations), label: expand(cols.label),
  };
}

function passes(p, i) {
  const f = state.filters;
  if (f.category && p.category[i] !== f.category) return false;
  if (f.identity && p.identity[i] !== f.identity) return false;
  if (f.source && !p.contributing_nations[i].split(",").includes(f.source)) return false;
  return true;
}

// The same filters as map layer filters (on the GeoJSON properties of kizuna.cop.geojson).
function layerFilter(geometry) {
  const f = state.filters;
  const all = ["all", ["==", ["geometry-type"], geometry]];
  if (f.category) all.push(["==", ["get", "category"], f.category]);
  if (f.identity) all.push(["==", ["get", "identity"], f.identity]);
  if (f.source) all.push(["in", `,${f.source},`, ["get", "nations"]]);
  return all;
}

function applyLayerFilters(map) {
  map.setFilter("tracks", layerFilter("Point"));
  map.setFilter("heading", layerFilter("LineString"));
  const selected = layerFilter("Point");
  selected.push(["==", ["get", "track_number"], state.selected == null ? -1 : state.selected]);
  map.setFilter("selected", selected);
}

function warningsGeoJSON(warnings) {
  const features = [];
  for (const w of warnings) {
    const props = { threat: w.threat_track_number, status: w.status };
    if (w.ellipse) features.push({ type: "Feature", geometry: { type: "Polygon", coordinates: [w.ellipse] }, properties: props });
    if (w.impact_lat_deg != null) {
      features.push({ type: "Feature", geometry: { type: "Point", coordinates: [w.impact_lon_deg, w.impact_lat_deg] }, properties: props });
    }
  }
  return { type: "FeatureCollection", features };
}

// -- map ----------------------------------------------------------------------------------------

// Natural Earth rings are cut at the antimeridian (Fiji, Chukotka); drawn as they are, their
// ±180° points join up as a line around the world. Unwrap each such ring's longitudes so it is
// continuous (MapLibre accepts longitudes beyond ±180 for that).
function unwrapRing(ring) {
  let offset = 0;
  return ring.map(([lon, lat], i) => {
    if (i > 0) {
      const step = lon - ring[i - 1][0];
      if (step > 180) offset -= 360;
      else if (step < -180) offset += 360;
    }
    return [lon + offset, lat];
  });
}

function unwrapGeometry(geometry) {
  if (geometry.type === "Polygon" || geometry.type === "MultiLineString") {
    return { ...geometry, coordinates: geometry.coordinates.map(unwrapRing) };
  }
  if (geometry.type === "MultiPolygon") {
    return { ...geometry, coordinates: geometry.coordinates.map((p) => p.map(unwrapRing)) };
  }
  return geometry;
}

function baseStyle() {
  const land = feature(land50, land50.objects.land);
  const landGeo = { ...land, features: land.features.map((f) => ({ ...f, geometry: unwrapGeometry(f.geometry) })) };
  const borders = unwrapGeometry(mesh(countries110, countries110.objects.countries, (a, b) => a !== b));
  return {
    version: 8,
    sources: {
      land: { type: "geojson", data: landGeo },
      borders: { type: "geojson", data: { type: "Feature", geometry: borders, properties: {} } },
    },
    layers: [
      { id: "sea", type: "background", paint: { "background-color": "#0b2233" } },
      { id: "land", type: "fill", source: "land", paint: { "fill-color": "#1f3326" } },
      { id: "borders", type: "line", source: "borders", paint: { "line-color": "#4d6b57", "line-width": 0.7 } },
    ],
  };
}

const IDENTITY_COLOUR = [
  "match", ["get", "identity"],
  "hostile", "#ff5c5c", "suspect", "#ff9f6b", "friend", "#7fd3ff", "assumed_friend", "#7fd3ff",
  "neutral", "#9dff9d", "#ffff80",
];

function addOverlayLayers(map) {
  map.addSource("coverage", { type: "geojson", data: EMPTY });
  map.addSource("assets", { type: "geojson", data: EMPTY });
  map.addSource("warnings", { type: "geojson", data: EMPTY });
  map.addSource("trail", { type: "geojson", data: EMPTY });
  // The worker fetches this source's data itself (a URL); beyond zoom 10 it over-zooms the tiles
  // (points need no finer tiling), which keeps the worker's work bounded when zoomed in. Tile
  // buffer 32 px (default 128): symbols are not clipped at tile edges and the largest thing
  // drawn around a point, the 16 px selection ring, fits; fewer features are copied into
  // neighbouring tiles (A/B at 5,000 tracks, same page: draw 3.4 s vs 4.2 s, software WebGL).
  map.addSource("picture", { type: "geojson", data: EMPTY, maxzoom: 10, buffer: 32 });
  // fill-antialias off: its outline pass would redraw every edge; the line layers draw them.
  map.addLayer({ id: "coverage-fill", type: "fill", source: "coverage", paint: { "fill-color": ["get", "colour"], "fill-opacity": 0.06, "fill-antialias": false } });
  map.addLayer({ id: "coverage-line", type: "line", source: "coverage", paint: { "line-color": ["get", "colour"], "line-opacity": 0.5, "line-width": 1, "line-dasharray": [3, 2] } });
  map.addLayer({ id: "assets-fill", type: "fill", source: "assets", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#ffd24d", "fill-opacity": 0.25 } });
  map.addLayer({ id: "assets-line", type: "line", source: "assets", filter: ["==", ["geometry-type"], "Polygon"], paint: { "line-color": "#ffd24d", "line-width": 1.5 } });
  map.addLayer({ id: "warning-ellipse", type: "fill", source: "warnings", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": ["case", ["==", ["get", "status"], "retracted"], "#888888", "#ff2a2a"], "fill-opacity": 0.35 } });
  map.addLayer({ id: "warning-outline", type: "line", source: "warnings", filter: ["==", ["geometry-type"], "Polygon"], paint: { "line-color": "#ffb0b0", "line-width": 2.5 } });
  map.addLayer({ id: "warning-impact", type: "circle", source: "warnings", filter: ["==", ["geometry-type"], "Point"], paint: { "circle-radius": 4, "circle-color": "#ff2a2a", "circle-stroke-color": "#fff", "circle-stroke-width": 1 } });
  map.addLayer({ id: "trail", type: "line", source: "trail", paint: { "line-color": "#ffffff", "line-opacity": 0.6, "line-width": 1.5 } });
  map.addLayer({ id: "heading", type: "line", source: "picture", filter: ["==", ["geometry-type"], "LineString"], paint: { "line-color": IDENTITY_COLOUR, "line-width": 1.2 } });
  map.addLayer({
    id: "tracks", type: "symbol", source: "picture", filter: ["==", ["geometry-type"], "Point"],
    // No collision work: every symbol is drawn, overlapping or not (a COP must not hide tracks).
    layout: { "icon-image": ["concat", ["get", "identity"], "|", ["get", "category"]], "icon-allow-overlap": true, "icon-ignore-placement": true },
  });
  map.addLayer({ id: "selected", type: "circle", source: "picture", filter: ["==", ["get", "track_number"], -1], paint: { "circle-radius": 14, "circle-opacity": 0, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } });
}

// -- data ---------------------------------------------------------------------------------------

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

// As getJSON, timing the wait for the bytes (network and server) apart from JSON.parse (ours).
async function getTimedJSON(url, timing, name) {
  let start = performance.now();
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) throw new Error(`${url}: ${response.status} ${text}`);
  timing[`${name}FetchMs`] = performance.now() - start;
  start = performance.now();
  const value = JSON.parse(text);
  timing[`${name}ParseMs`] = performance.now() - start;
  return value;
}

// Resolves once the map has drawn everything it was given: two animation frames (so a render
// has run since the last change), then either it is settled or we wait for its "idle" event.
function idle(map) {
  return new Promise((resolve) => {
    const check = () => (map.loaded() && !map.isMoving() ? resolve() : map.once("idle", resolve));
    requestAnimationFrame(() => requestAnimationFrame(check));
    setTimeout(resolve, IDLE_TIMEOUT_MS); // never hang a test: its assertions then decide
  });
}

function formatClock(t) {
  if (t == null) return "–";
  let text = `T+${t.toFixed(0)} s`;
  if (state.epoch) text += `  ${new Date(Date.parse(state.epoch) + t * 1000).toISOString().replace(".000Z", "Z")}`;
  return text;
}

function pictureURL(nation, time, format) {
  return `/api/picture/${format}?nation=${encodeURIComponent(nation)}${time == null ? "" : `&t=${time}`}`;
}

// The map's data: a URL its worker fetches (null picture time: nothing held, an empty map).
function renderMap(map) {
  const p = state.picture;
  map.getSource("picture").setData(p.time == null ? EMPTY : new URL(pictureURL(p.nation, p.time, "geojson"), location.href).href);
}

function renderClock() {
  $("clock").textContent = `${formatClock(state.t)}  (picture at ${state.picture.time == null ? "–" : state.picture.time.toFixed(0) + " s"})`;
}

// Filters or selection changed: layer filters for the map, the table from the columns.
function renderSelection(map) {
  applyLayerFilters(map);
  renderTable();
}

function renderTable() {
  const p = state.picture;
  const visible = [];
  for (let i = 0; i < p.n; i++) if (passes(p, i)) visible.push(i);
  state.visible = visible;
  $("track-count").textContent = `${visible.length} of ${p.n}`;
  $("table-spacer").style.height = `${visible.length * ROW_PX}px`;
  renderTableRows();
}

// Virtual table: only the rows in view (plus a few) are in the DOM; the spacer gives the
// scrollbar the height of all of them.
function renderTableRows() {
  const p = state.picture;
  const scroller = $("table-scroll");
  const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_PX) - OVERSCAN_ROWS);
  const count = Math.ceil(scroller.clientHeight / ROW_PX) + 2 * OVERSCAN_ROWS;
  const rows = state.visible.slice(first, first + count);
  const html = [];
  for (const i of rows) {
    const tn = p.track_number[i];
    const cls = tn === state.selected ? " class=\"selected\"" : "";
    html.push(`<tr data-tn="${tn}"${cls}><td>${tn}</td><td>${p.category[i]}</td><td>${p.identity[i]}</td>` +
      `<td>${(p.alt_m[i] / 1000).toFixed(1)}</td><td>${(p.speed_mps[i] * 1.943844).toFixed(0)}</td><td>${p.quality[i]}</td>` +
      `<td>${p.contributing_nations[i]}</td></tr>`);
  }
  const table = $("tracks");
  table.style.top = `${first * ROW_PX}px`;
  table.querySelector("tbody").innerHTML = html.join("");
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function renderWarnings(map) {
  map.getSource("warnings").setData(warningsGeoJSON(state.warnings));
  const box = $("warnings");
  $("warning-count").textContent = state.warnings.length ? `(${state.warnings.length})` : "";
  if (!state.warnings.length) {
    box.innerHTML = "<p class=\"empty\">No warnings.</p>";
    return;
  }
  box.innerHTML = state.warnings.map((w) => {
    const ttl = w.impact_time != null && state.t != null ? w.impact_time - state.t : null;
    const countdown = ttl == null ? "impact time unknown" : ttl > 0 ? `impact in ${ttl.toFixed(0)} s` : `impact ${(-ttl).toFixed(0)} s ago`;
    const history = w.history.map((h) => `<tr><td>r${h.revision}</td><td>${h.time.toFixed(0)} s</td><td>${h.status}</td>` +
      `<td>${h.impact_time == null ? "–" : h.impact_time.toFixed(0) + " s"}</td><td>${escapeHtml(h.endangered_assets.join(", ") || "–")}</td></tr>`).join("");
    const axes = w.semi_major_m != null ? `${(w.semi_major_m / 1000).toFixed(1)} × ${(w.semi_minor_m / 1000).toFixed(1)} km` : "–";
    return `<div class="warning ${w.status}" data-threat="${w.threat_track_number}">` +
      `<div><b>Threat ${w.threat_track_number}</b>${w.issuer ? ` from ${escapeHtml(w.issuer)}` : ""} · ${w.status} · revision ${w.revision}</div>` +
      `<div class="ttl">${countdown}</div>` +
      `<div>ellipse ${axes} · endangered: ${escapeHtml(w.endangered_assets.join(", ") || "none")}</div>` +
      `<table><thead><tr><th>rev</th><th>issued</th><th>status</th><th>impact</th><th>assets</th></tr></thead><tbody>${history}</tbody></table></div>`;
  }).join("");
}

async function showDetails(map, number) {
  state.selected = number;
  renderSelection(map);
  let data;
  try {
    data = await getJSON(`/api/tracks/${number}?nation=${state.nation}`);
  } catch (err) {
    $("details").innerHTML = `<dt>error</dt><dd>${escapeHtml(err.message)}</dd>`;
    return;
  }
  // The report at the picture's time (the history has them all), else the latest.
  const held = data.history.find((h) => h.time === state.picture.time) || data.latest;
  const rows = {
    time: `${held.time.toFixed(0)} s`, category: held.category, identity: held.identity,
    quality: `${held.quality} / 15`, "position σ": held.pos_sigma_m == null ? "–" : `${held.pos_sigma_m.toFixed(0)} m`,
    position: `${held.lat_deg.toFixed(4)}°, ${held.lon_deg.toFixed(4)}°, ${(held.alt_m / 1000).toFixed(2)} km`,
    "course / speed": `${held.course_deg.toFixed(0)}° / ${held.speed_mps.toFixed(0)} m/s`,
    label: held.label, contributors: held.contributors.join(", "),
    "source nations": held.contributing_nations.join(", "),
    latency: held.source_time == null ? "–" : `${(held.time - held.source_time).toFixed(1)} s`,
    history: `${data.history.length} reports, ${data.history[0].time.toFixed(0)}–${data.latest.time.toFixed(0)} s`,
  };
  $("details-title").textContent = String(number);
  $("details").innerHTML = Object.entries(rows).map(([k, v]) => `<dt>${k}</dt><dd>${escapeHtml(v)}</dd>`).join("");
  $("details-panel").hidden = false;
  map.getSource("trail").setData({
    type: "Feature", properties: {},
    geometry: { type: "LineString", coordinates: data.history.map((h) => [h.lon_deg, h.lat_deg]) },
  });
}

function clearDetails(map) {
  state.selected = null;
  $("details-panel").hidden = true;
  map.getSource("trail").setData(EMPTY);
  renderSelection(map);
}

async function load(map, nation, t) {
  const timing = {};
  const q = `nation=${encodeURIComponent(nation)}${t == null ? "" : `&t=${t}`}`;
  const [picture, warnings] = await Promise.all([
    getTimedJSON(pictureURL(nation, t, "columns"), timing, "picture"),
    getTimedJSON(`/api/warnings?${q}`, timing, "warnings"),
  ]);
  applyFrame(map, nation, t ?? picture.time, picture, warnings.warnings, timing);
}

function applyFrame(map, nation, t, columns, warnings, timing = {}) {
  const start = performance.now();
  applyFrameNow(map, nation, t, columns, warnings, timing);
  timing.scriptMs = performance.now() - start; // our own script: decode, table, panels, setData
  state.timing = timing;
  state.lastScriptMs = timing.scriptMs;
}

function applyFrameNow(map, nation, t, columns, warnings, timing) {
  let start = performance.now();
  state.nation = nation;
  state.t = t;
  state.picture = decodePicture(columns);
  state.warnings = warnings;
  timing.decodeMs = performance.now() - start;
  if (state.selected != null && !state.picture.track_number.includes(state.selected)) {
    state.selected = null;
    $("details-panel").hidden = true;
    map.getSource("trail").setData(EMPTY);
  }
  start = performance.now();
  renderMap(map);
  applyLayerFilters(map);
  timing.setDataMs = performance.now() - start;
  start = performance.now();
  renderClock();
  renderTable();
  timing.tableMs = performance.now() - start;
  start = performance.now();
  renderWarnings(map);
  timing.warningsMs = performance.now() - start;
  const k = state.times.findIndex((x) => x === state.picture.time);
  if (k >= 0) $("time").value = String(k);
}

// -- replay over the WebSocket -----------------------------------------------------------------

function stopPlaying() {
  state.playing = false;
  $("play").textContent = "▶";
  if (state.socket) {
    state.socket.onclose = null;
    state.socket.close();
    state.socket = null;
  }
}

function startPlaying(map) {
  stopPlaying();
  state.playing = true;
  $("play").textContent = "⏸";
  const speed = Number($("speed").value);
  const start = state.mode === "live" ? "" : `&t=${state.t ?? ""}`;
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/picture?nation=${state.nation}&speed=${speed}${start}`);
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "picture") {
      if (frame.time != null && !state.times.includes(frame.time)) {
        state.times.push(frame.time); // live: the recording grew
        $("time").max = String(state.times.length - 1);
      }
      applyFrame(map, frame.nation, frame.time, frame.picture, frame.warnings);
    }
    else if (frame.type === "end") stopPlaying();
  };
  socket.onclose = () => stopPlaying();
  state.socket = socket;
}

// -- start --------------------------------------------------------------------------------------

async function main() {
  const map = new maplibregl.Map({
    container: "map",
    style: baseStyle(),
    center: [137, 37],
    zoom: 4,
    fadeDuration: 0, // symbols appear at once: updates are measurable and tests see them
    attributionControl: { compact: true, customAttribution: "Natural Earth (public domain)" },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  map.on("styleimagemissing", (event) => {
    if (event.id.includes("|")) addSymbolImage(map, event.id);
  });
  await new Promise((resolve) => map.once("load", resolve));
  addOverlayLayers(map);

  const [nations, times, assets, sensors] = await Promise.all([
    getJSON("/api/nations"), getJSON("/api/times"), getJSON("/api/assets"), getJSON("/api/sensors"),
  ]);
  state.nations = nations;
  state.times = times.times;
  state.epoch = times.epoch;
  state.mode = times.mode;
  const colour = Object.fromEntries(nations.map((n) => [n.code, n.colour]));
  $("nation").innerHTML = nations.map((n) => `<option value="${n.code}">${escapeHtml(n.name)} (${n.code})</option>`).join("");
  $("filter-source").innerHTML = "<option value=\"\">all sources</option>" + nations.map((n) => `<option>${n.code}</option>`).join("");
  $("time").max = String(Math.max(state.times.length - 1, 0));

  map.getSource("coverage").setData({
    type: "FeatureCollection",
    features: sensors.filter((s) => s.coverage).map((s) => ({
      type: "Feature", geometry: { type: "Polygon", coordinates: [s.coverage] },
      properties: { id: s.id, colour: colour[s.nation] || "#888888" },
    })),
  });
  map.getSource("assets").setData({
    type: "FeatureCollection",
    features: assets.map((a) => ({ type: "Feature", geometry: { type: "Polygon", coordinates: [a.outline] }, properties: { name: a.name } })),
  });

  const params = new URLSearchParams(location.search);
  const nation = params.get("nation") || (nations[0] && nations[0].code);
  const t0 = params.has("t") ? Number(params.get("t")) : state.times.length ? state.times[state.times.length - 1] : null;
  $("nation").value = nation;

  // Frame the picture area: sensors' coverage and assets, else the tracks.
  const bounds = new maplibregl.LngLatBounds();
  for (const s of sensors) if (s.coverage) for (const p of s.coverage) bounds.extend(p);
  for (const a of assets) bounds.extend([a.lon_deg, a.lat_deg]);

  if (nation) await load(map, nation, t0);
  for (let i = 0; i < state.picture.n; i++) bounds.extend([state.picture.lon_deg[i], state.picture.lat_deg[i]]);
  if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 30, animate: false });

  $("nation").addEventListener("change", () => {
    const playing = state.playing;
    stopPlaying();
    load(map, $("nation").value, state.t).then(() => { if (playing) startPlaying(map); });
  });
  $("time").addEventListener("input", () => {
    stopPlaying();
    load(map, state.nation, state.times[Number($("time").value)]);
  });
  $("play").addEventListener("click", () => (state.playing ? stopPlaying() : startPlaying(map)));
  $("speed").addEventListener("change", () => {
    if (state.playing && state.socket) state.socket.send(JSON.stringify({ speed: Number($("speed").value) }));
  });
  for (const [id, key] of [["filter-category", "category"], ["filter-identity", "identity"], ["filter-source", "source"]]) {
    $(id).addEventListener("change", () => { state.filters[key] = $(id).value; renderSelection(map); });
  }
  let scrollQueued = false;
  $("table-scroll").addEventListener("scroll", () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => { scrollQueued = false; renderTableRows(); });
  });
  $("tracks").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-tn]");
    if (row) showDetails(map, Number(row.dataset.tn));
  });
  $("details-close").addEventListener("click", () => clearDetails(map));
  map.on("click", "tracks", (event) => showDetails(map, event.features[0].properties.track_number));
  map.on("mouseenter", "tracks", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "tracks", () => { map.getCanvas().style.cursor = ""; });

  // Main-thread tasks over 50 ms (the Long Tasks API), for the benchmark's "longest block".
  const longTasks = [];
  if (typeof PerformanceObserver !== "undefined" && PerformanceObserver.supportedEntryTypes.includes("longtask")) {
    new PerformanceObserver((list) => { longTasks.push(...list.getEntries()); if (longTasks.length > 500) longTasks.splice(0, 250); })
      .observe({ type: "longtask" });
  }

  // Test and benchmark hooks (tests/browser, benchmarks/bench_cop.py).
  window.kizuna = {
    map,
    state,
    /** Distinct track numbers drawn as symbols right now. */
    renderedCount() {
      const drawn = map.queryRenderedFeatures({ layers: ["tracks"] });
      return new Set(drawn.map((f) => f.properties.track_number)).size;
    },
    renderedTrackNumbers() {
      const drawn = map.queryRenderedFeatures({ layers: ["tracks"] });
      return [...new Set(drawn.map((f) => f.properties.track_number))].sort((a, b) => a - b);
    },
    warningEllipsesDrawn() {
      return map.queryRenderedFeatures({ layers: ["warning-ellipse"] }).length;
    },
    /** Load nation at t and resolve when the map has drawn it; returns milliseconds taken. */
    async show(nationCode, t) {
      stopPlaying();
      $("nation").value = nationCode;
      const start = performance.now();
      await load(map, nationCode, t);
      const loaded = performance.now();
      await idle(map);
      const end = performance.now();
      const tasks = longTasks.filter((e) => e.startTime + e.duration > start && e.startTime < end);
      state.lastShow = {
        ...state.timing,
        loadMs: loaded - start, // fetch + parse + our script, until the map was handed its data
        drawMs: end - loaded, // MapLibre: worker fetch/parse/tiling, then the frames that draw it
        totalMs: end - start,
        longestTaskMs: Math.max(0, ...tasks.map((e) => e.duration)),
        longTasks: tasks.length,
      };
      return end - start;
    },
    /** Frame intervals (ms) of n consecutive animation frames while the map repaints. */
    async frameIntervals(n) {
      const stamps = [];
      for (let i = 0; i <= n; i++) {
        await new Promise((resolve) => { map.once("render", resolve); map.triggerRepaint(); });
        stamps.push(performance.now());
      }
      return stamps.slice(1).map((s, i) => s - stamps[i]);
    },
    /** Draw an already-fetched picture and resolve when drawn; returns milliseconds taken. */
    async render(columns) {
      const start = performance.now();
      applyFrame(map, state.nation, columns.time, columns, state.warnings);
      await idle(map);
      return performance.now() - start;
    },
    idle: () => idle(map),
    /** Mean milliseconds per frame over n repaints of an unchanged picture. */
    async frameTime(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        await new Promise((resolve) => { map.once("render", resolve); map.triggerRepaint(); });
      }
      return (performance.now() - start) / n;
    },
    /** Benchmark baseline: milliseconds to draw n symbols with milsymbol, uncached. */
    symbolCost(n) {
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const canvas = new ms.Symbol(sidc("hostile", "air"), { size: 18 }).asCanvas(2);
        canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      }
      return performance.now() - start;
    },
  };
  if (state.mode === "live" && nation) startPlaying(map); // follow the exercise at once
  await idle(map);
  window.kizuna.ready = true;
  document.body.dataset.ready = "true";
}

main().catch((err) => {
  console.error(err);
  document.body.dataset.error = String(err && err.message ? err.message : err);
});
