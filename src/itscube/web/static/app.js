/* itscube map page: Leaflet map, uPlot series; everything it needs is served locally. */
"use strict";

const state = { points: [], mode: "pan", layers: {}, lastSeries: null, box: null, cubes: [] };
window.itscube = state;

const $ = (id) => document.getElementById(id);
const DT_BINS = [[0, 30, "#1b9e77"], [30, 90, "#d95f02"], [90, 180, "#7570b3"], [180, 1e9, "#e7298a"]];

function say(text) { $("message").textContent = text || ""; }

async function api(path, options) {
  const r = await fetch(path, options);
  const ct = r.headers.get("Content-Type") || "";
  const body = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function windowQuery() {
  const q = new URLSearchParams();
  for (const [id, key] of [["start", "start"], ["end", "end"], ["min-dt", "min_dt"], ["max-dt", "max_dt"], ["sensors", "sensors"]]) {
    if ($(id).value) q.set(key, $(id).value);
  }
  return q;
}

// ------------------------------------------------------------------ map
const map = L.map("map", { zoomControl: true, attributionControl: true, boxZoom: false });
state.map = map;
// page coordinates (px) of a lon/lat: for scripts that drive the page (tests, screenshots)
state.screen = (lon, lat) => {
  const p = map.latLngToContainerPoint([lat, lon]);
  const r = document.getElementById("map").getBoundingClientRect();
  return [p.x + r.left, p.y + r.top];
};
map.setView([70, -45], 3);

async function init() {
  const cfg = await api("api/config");
  $("version").textContent = cfg.version;
  state.cubes = cfg.cubes;
  if (cfg.basemap) L.tileLayer(cfg.basemap, { maxZoom: 18 }).addTo(map);
  const fp = await api("api/footprints");
  const foot = L.geoJSON(fp, {
    style: { color: "#2d6cdf", weight: 1, fillOpacity: 0.03 },
    onEachFeature: (f, lyr) => {
      const p = f.properties;
      lyr.bindTooltip(`${p.id}<br>EPSG:${p.epsg}` + (p.granule_count ? `<br>${p.granule_count} pairs` : ""));
    },
  }).addTo(map);
  if (fp.features.length) map.fitBounds(foot.getBounds(), { maxZoom: 10 });
  showLayers(cfg.layers);
  state.ready = true;
}

// ------------------------------------------------------------------ layers
function showLayers(layers) {
  const groups = {};
  for (const l of layers) (groups[l.group] = groups[l.group] || []).push(l);
  for (const [group, members] of Object.entries(groups)) {
    if (state.layers[group]) continue;
    members.sort((a, b) => a.period.localeCompare(b.period));
    addGroup(group, members);
  }
}

function addGroup(group, members) {
  const li = document.createElement("li");
  const first = members[0];
  const check = document.createElement("input");
  check.type = "checkbox";
  check.checked = first.kind === "vector" || Object.keys(state.layers).length === 0 || first.name.startsWith("median speed");
  const label = document.createElement("label");
  label.append(check, ` ${first.name}` + (first.units ? ` (${first.units})` : ""));
  li.append(label);
  const entry = { members, index: members.length - 1, leaflet: null, check };
  state.layers[group] = entry;
  if (first.kind === "raster" && first.legend) {
    const bar = document.createElement("div");
    bar.className = "legend";
    bar.style.background = `linear-gradient(to right, ${first.legend.join(",")})`;
    const labels = document.createElement("div");
    labels.className = "legend-labels";
    labels.innerHTML = `<span>${fmt(first.vmin)}</span><span>${fmt(first.vmax)}</span>`;
    li.append(bar, labels);
    if (members.length > 1) {
      const slider = document.createElement("input");
      slider.type = "range"; slider.min = 0; slider.max = members.length - 1; slider.value = entry.index;
      const period = document.createElement("span");
      period.textContent = members[entry.index].period;
      slider.oninput = () => { entry.index = +slider.value; period.textContent = members[entry.index].period; draw(entry); };
      li.append(slider, period);
    }
  }
  check.onchange = () => draw(entry);
  $("layers").append(li);
  draw(entry);
}

function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toPrecision(2); }

async function draw(entry) {
  if (entry.leaflet) { map.removeLayer(entry.leaflet); entry.leaflet = null; }
  if (!entry.check.checked) return;
  const l = entry.members[entry.index];
  if (l.kind === "raster") {
    entry.leaflet = L.tileLayer(`tiles/${l.id}/{z}/{x}/{y}.png`, { opacity: 0.85, maxNativeZoom: 16, maxZoom: 18 }).addTo(map);
  } else {
    const gj = await api(`api/vector/${l.id}`);
    entry.leaflet = L.geoJSON(gj, {
      style: { color: "#c2185b", weight: 2 },
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4, color: "#c2185b" }),
    }).addTo(map);
  }
}

// ------------------------------------------------------------------ modes
function setMode(mode) {
  state.mode = mode;
  for (const m of ["pan", "box", "polygon", "points"]) $(`mode-${m}`).classList.toggle("active", m === mode);
  if (mode === "box") map.dragging.disable(); else map.dragging.enable();
  if (mode === "polygon") { map.doubleClickZoom.disable(); polyPts = []; } else map.doubleClickZoom.enable();
}
$("mode-pan").onclick = () => setMode("pan");
$("mode-box").onclick = () => setMode("box");
$("mode-points").onclick = () => setMode("points");
$("mode-polygon").onclick = () => setMode("polygon");

// polygon: a click per vertex; a click on the first vertex (or a double click) closes it
// (downloaded by its bounding box)
let polyPts = [], polyLine = null;
map.on("click", (e) => {
  if (state.mode !== "polygon") return;
  if (polyPts.length >= 3 && map.latLngToContainerPoint(polyPts[0]).distanceTo(e.containerPoint) < 10) {
    closePolygon();
    return;
  }
  polyPts.push(e.latlng);
  if (polyLine) map.removeLayer(polyLine);
  polyLine = L.polyline(polyPts, { color: "#2d6cdf", weight: 2, interactive: false }).addTo(map);
});
map.on("dblclick", closePolygon);
function closePolygon() {
  if (state.mode !== "polygon" || polyPts.length < 3) return;
  if (polyLine) map.removeLayer(polyLine);
  if (boxRect) map.removeLayer(boxRect);
  boxRect = L.polygon(polyPts, { color: "#2d6cdf", weight: 2, fillOpacity: 0.05 }).addTo(map);
  const b = boxRect.getBounds();
  state.polygon = polyPts.map((p) => [p.lng, p.lat]);
  state.box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  polyPts = [];
  describeArea();
}

let boxStart = null, boxRect = null;
map.on("mousedown", (e) => {
  if (state.mode !== "box") return;
  boxStart = e.latlng;
  if (boxRect) map.removeLayer(boxRect);
  boxRect = L.rectangle([boxStart, boxStart], { className: "box-draw", color: "#2d6cdf", weight: 2 }).addTo(map);
});
map.on("mousemove", (e) => { if (boxStart && boxRect) boxRect.setBounds([boxStart, e.latlng]); });
map.on("mouseup", (e) => {
  if (!boxStart) return;
  const b = L.latLngBounds(boxStart, e.latlng);
  boxStart = null;
  if (b.getNorth() === b.getSouth() || b.getEast() === b.getWest()) return;
  state.box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  describeArea();
});

$("import-area").onchange = async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  try {
    const shape = L.geoJSON(JSON.parse(await file.text()), { style: { color: "#2d6cdf", weight: 2, fillOpacity: 0.05 } });
    const b = shape.getBounds();
    if (!b.isValid()) throw new Error(`${file.name}: no geometry`);
    if (boxRect) map.removeLayer(boxRect);
    boxRect = shape.addTo(map);
    map.fitBounds(b);
    // polygons are downloaded by their bounding box (as itscube download --polygon does)
    state.box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    describeArea();
  } catch (err) { say(err.message); }
};

async function describeArea() {
  const q = windowQuery();
  q.set("bbox", state.box.map((v) => v.toFixed(6)).join(","));
  try {
    const info = await api(`api/area?${q}`);
    state.area = info;
    $("area-info").hidden = false;
    $("area-cubes").innerHTML = info.cubes.length
      ? info.cubes.map((c) => `<li>${c.id} (EPSG:${c.epsg})</li>`).join("")
      : "<li>no cube covers this box</li>";
    $("area-size").textContent = info.decoded_gb == null ? "" : `about ${info.decoded_gb} GB decoded (vx, vy, v, v_error; every layer)`;
    $("area-command").textContent = info.command;
    $("run-download").disabled = !info.cubes.length;
    say("");
  } catch (err) { say(err.message); }
}

// ------------------------------------------------------------------ points
map.on("click", (e) => { if (state.mode === "points") addPoint(e.latlng.lng, e.latlng.lat); });

function addPoint(lon, lat, id) {
  const p = { id: id || `p${state.points.length + 1}`, lon, lat };
  p.marker = L.marker([lat, lon], { draggable: true }).addTo(map);
  p.marker.on("dragend", () => { const ll = p.marker.getLatLng(); p.lon = ll.lng; p.lat = ll.lat; listPoints(); showSeries(p); });
  p.marker.on("click", () => showSeries(p));
  state.points.push(p);
  listPoints();
  showSeries(p);
}

function listPoints() {
  $("point-list").innerHTML = "";
  for (const p of state.points) {
    const li = document.createElement("li");
    const name = document.createElement("a");
    name.href = "#"; name.textContent = `${p.id}: ${p.lon.toFixed(4)}, ${p.lat.toFixed(4)}`;
    name.onclick = (ev) => { ev.preventDefault(); showSeries(p); };
    const del = document.createElement("button");
    del.textContent = "delete"; del.type = "button";
    del.onclick = () => { map.removeLayer(p.marker); state.points = state.points.filter((o) => o !== p); listPoints(); };
    li.append(name, del);
    $("point-list").append(li);
  }
}

function save(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name; a.click();
}
$("export-csv").onclick = () => save("points.csv", "id,lon,lat\n" + state.points.map((p) => `${p.id},${p.lon},${p.lat}`).join("\n") + "\n", "text/csv");
$("export-geojson").onclick = () => save("points.geojson", JSON.stringify({
  type: "FeatureCollection",
  features: state.points.map((p) => ({ type: "Feature", properties: { id: p.id }, geometry: { type: "Point", coordinates: [p.lon, p.lat] } })),
}), "application/geo+json");
$("import-points").onchange = async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  const text = await file.text();
  try {
    if (/\.csv$/i.test(file.name)) {
      const rows = text.trim().split(/\r?\n/).map((r) => r.split(","));
      const head = rows[0].map((h) => h.trim().toLowerCase());
      const xi = head.findIndex((h) => ["lon", "longitude", "lng"].includes(h));
      const yi = head.findIndex((h) => ["lat", "latitude"].includes(h));
      const ii = head.indexOf("id");
      if (xi < 0 || yi < 0) throw new Error(`${file.name}: needs lon, lat columns`);
      for (const r of rows.slice(1)) addPoint(+r[xi], +r[yi], ii >= 0 ? r[ii] : undefined);
    } else {
      const gj = JSON.parse(text);
      for (const f of gj.features || [gj]) {
        if (f.geometry && f.geometry.type === "Point") addPoint(f.geometry.coordinates[0], f.geometry.coordinates[1], f.properties && f.properties.id);
      }
    }
    say("");
  } catch (err) { say(err.message); }
};

// ------------------------------------------------------------------ series
let plot = null;
async function showSeries(p) {
  state.selected = p;
  const q = windowQuery();
  q.set("lon", p.lon); q.set("lat", p.lat);
  if (state.cubes.length === 1) q.set("cube", state.cubes[0]);
  state.seriesQuery = q;
  $("series-panel").hidden = false;
  $("series-title").textContent = `${p.id} (${p.lon.toFixed(4)}, ${p.lat.toFixed(4)}) loading...`;
  $("series-csv").href = `api/series.csv?${q}`;
  try {
    const s = await api(`api/series?${q}`);
    state.lastSeries = s;
    state.annual = null;
    $("series-title").textContent = `${p.id}: ${s.time.length} pairs`;
    drawSeries();
    say("");
    loadAnnual();
  } catch (err) { $("series-title").textContent = p.id; say(err.message); }
}

async function loadAnnual() {
  $("series-note").textContent = "";
  if (!$("series-annual").checked || !state.seriesQuery) { state.annual = null; drawSeries(); return; }
  const q = new URLSearchParams(state.seriesQuery);
  q.set("var", $("series-var").value);
  const a = await api(`api/annual?${q}`);
  state.annual = a.note ? null : a;
  $("series-note").textContent = a.note || "";
  drawSeries();
}
$("series-var").onchange = () => loadAnnual();
$("series-colour").onchange = () => drawSeries();
$("series-annual").onchange = () => loadAnnual();
$("series-close").onclick = () => { $("series-panel").hidden = true; };

const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

function groupsOf(s, n) {
  if ($("series-colour").value === "sensor" && s.satellite) {
    const names = [...new Set(s.satellite)].sort();
    return names.map((name, k) => ({ label: name, color: PALETTE[k % PALETTE.length], member: (i) => s.satellite[i] === name }));
  }
  return DT_BINS.map(([lo, hi, color]) => ({ label: `${lo}-${hi < 1e8 ? hi : ""} d`, color, member: (i) => s.date_dt[i] >= lo && s.date_dt[i] < hi }));
}

function drawSeries() {
  const s = state.lastSeries;
  if (!s) return;
  const name = $("series-var").value;
  const pts = s.time.map((d, i) => ({ t: Date.parse(d + "Z") / 1000, i }));
  const annual = [];
  if (state.annual && state.annual[name]) {
    state.annual.time.forEach((d, k) => {
      const y = +d.slice(0, 4);
      annual.push({ t0: Date.UTC(y, 0, 1) / 1000, t1: Date.UTC(y + 1, 0, 1) / 1000, v: state.annual[name][k] });
    });
  }
  const xs = [...new Set([...pts.map((p) => p.t), ...annual.flatMap((a) => [a.t0, a.t1 - 1])])].sort((a, b) => a - b);
  const at = new Map(xs.map((x, k) => [x, k]));
  const groups = groupsOf(s, pts.length);
  const data = [xs];
  const err = new Array(xs.length).fill(null);
  const series = [{}];
  for (const g of groups) {
    const col = new Array(xs.length).fill(null);
    for (const p of pts) if (g.member(p.i)) { col[at.get(p.t)] = s[name][p.i]; err[at.get(p.t)] = s[`${name}_error`] ? s[`${name}_error`][p.i] : null; }
    data.push(col);
    series.push({ label: g.label, stroke: g.color, paths: () => null, points: { show: true, size: 5, fill: g.color } });
  }
  if (annual.length) {
    const col = new Array(xs.length).fill(null);
    for (const a of annual) { col[at.get(a.t0)] = a.v; col[at.get(a.t1 - 1)] = a.v; }
    data.push(col);
    series.push({ label: "annual", stroke: "#222", width: 2, spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } });
  }
  const nGroups = groups.length;
  const errorBars = (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = 1;
    for (let k = 1; k <= nGroups; k++) {
      if (!u.series[k].show) continue;
      ctx.strokeStyle = groups[k - 1].color;
      for (let i = 0; i < xs.length; i++) {
        const v = u.data[k][i];
        if (v == null || err[i] == null) continue;
        const x = u.valToPos(xs[i], "x", true);
        ctx.beginPath();
        ctx.moveTo(x, u.valToPos(v - err[i], "y", true));
        ctx.lineTo(x, u.valToPos(v + err[i], "y", true));
        ctx.stroke();
      }
    }
    ctx.restore();
  };
  const el = $("series-plot");
  if (plot) plot.destroy();
  plot = new uPlot({
    width: el.clientWidth || 600, height: 240,
    scales: { x: { time: true } },
    axes: [{}, { label: `${name} (m/yr)` }],
    series, hooks: { draw: [errorBars] }, legend: { show: true },
  }, data, el);
  plot.pairSeries = nGroups;
  state.plot = plot;
}

// ------------------------------------------------------------------ jobs
async function submit(body) {
  try {
    const job = await api("api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    watch(job);
    say("");
  } catch (err) { say(err.message); }
}
$("run-download").onclick = () => submit({ kind: "download", bbox: state.box, start: $("start").value, end: $("end").value, min_dt: $("min-dt").value, max_dt: $("max-dt").value });
$("run-track").onclick = () => submit({ kind: "track", points: state.points.map((p) => [p.lon, p.lat]), start: $("start").value, end: $("end").value });
$("run-strain").onclick = () => submit({ kind: "strain", start: $("start").value, end: $("end").value });

async function upload(input) {
  const file = input.files[0];
  if (!file) return null;
  const r = await api(`api/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", body: await file.arrayBuffer() });
  return r.id;
}
$("run-qdiv").onclick = async () => {
  try {
    const thickness = await upload($("qdiv-thickness"));
    if (!thickness) { say("qdiv: choose a thickness GeoTIFF first"); return; }
    const boundary = await upload($("qdiv-boundary"));
    submit({ kind: "qdiv", thickness, boundary, bbox: boundary ? undefined : state.box, start: $("start").value, end: $("end").value });
  } catch (err) { say(err.message); }
};

function watch(job) {
  const li = document.createElement("li");
  li.id = `job-${job.id}`;
  $("jobs").prepend(li);
  const poll = async () => {
    const j = await api(`api/jobs/${job.id}`);
    const p = j.progress;
    li.className = `job-${j.state}`;
    li.innerHTML = `<b>${j.kind}</b> ${j.state}` + (p.total ? ` ${p.done}/${p.total} ${p.task}` : "") +
      (j.error ? `: ${j.error}` : "") + `<code>${j.command}</code>`;
    if (j.state === "running") { setTimeout(poll, 500); return; }
    if (j.state === "done") {
      const cfg = await api("api/config");
      state.cubes = cfg.cubes;
      showLayers(cfg.layers);
    }
  };
  poll();
}

init().catch((err) => say(err.message));
