// Draws the run embedded in #data as one SVG timeline. Elements are built
// once; zooming only moves them (and redraws the visible axis ticks), so
// thousands of operations stay usable. No libraries, no network.
"use strict";

function fail(message) {
  document.body.dataset.rendered = "error";
  document.body.dataset.error = String(message);
}
window.onerror = (message) => fail(message);

const SVG = "http://www.w3.org/2000/svg";
const AXIS = 42, ROW = 20, GAP = 6, GUTTER = 110;

// An element of `ns` with attributes and children (strings become text).
function make(ns, tag, attrs = {}, ...children) {
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}
const svg = (tag, attrs, ...children) => make(SVG, tag, attrs, ...children);
const html = (tag, attrs, ...children) => make(null, tag, attrs, ...children);
const ms = (ns) => (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1);
let time = (ns) => ms(ns) + " ms"; // a recorded history's own unit: as it is

function header(data) {
  document.title = "replisim: " + data.title;
  const facts = html("table", { class: "facts" },
    ...data.facts.map(([k, v]) => html("tr", {}, html("th", {}, k), html("td", {}, v))));
  const verdicts = html("ul", { class: "verdicts" }, ...data.verdicts.map((v) => {
    const first = v.text.split("\n")[0];
    const item = html("li", { class: v.status },
      html("span", { class: "badge" }, v.status), " ", html("b", {}, v.name),
      v.claimed ? "" : html("span", { class: "unclaimed" }, " (not claimed)"), ": ", first);
    if (v.text.includes("\n")) {
      item.append(html("details", {}, html("summary", {}, "evidence"), html("pre", {}, v.text)));
    }
    return item;
  }));
  const parts = [html("h1", {}, "replisim report: " + data.title), facts, verdicts];
  if (data.digest) parts.push(html("p", { class: "digest" }, "digest: " + data.digest));
  document.getElementById("header").append(...parts);
}

function phases(data) {
  if (!data.phases.length) return;
  const cols = ["phase", "from ms", "to ms", "ok", "fail", "info",
    "p50 ms", "p90 ms", "p99 ms", "max ms", "msgs/op"];
  const rows = data.phases.map((p) => {
    const l = p.latency;
    return [p.label, ms(p.start), p.end == null ? "end" : ms(p.end), p.ok, p.fail, p.info,
      ...(l ? [l.p50, l.p90, l.p99, l.max].map(ms) : ["", "", "", ""]),
      p.messages_per_op == null ? "" : p.messages_per_op.toFixed(1)];
  });
  document.getElementById("phases").append(html("h2", {}, "Latency by phase"),
    html("table", {}, html("tr", {}, ...cols.map((c) => html("th", {}, c))),
      ...rows.map((r) => html("tr", {}, ...r.map((c) => html("td", {}, String(c)))))));
}

// Stacks each lane's bars in rows so that none overlap (an unfinished
// operation runs to the end); returns each lane's top and the total height.
function stack(data) {
  const rows = data.lanes.map(() => []);
  for (const op of data.ops) {
    const ends = rows[op.lane], end = op.end ?? data.end;
    let row = ends.findIndex((e) => e <= op.start);
    if (row < 0) row = ends.push(end) - 1; else ends[row] = end;
    op.row = row;
  }
  let y = AXIS + data.replicas * (ROW + 2) + (data.replicas ? GAP : 0);
  const tops = rows.map((r) => { const top = y; y += Math.max(1, r.length) * ROW + GAP; return top; });
  return { tops, height: y };
}

function timeline(data) {
  const { tops, height } = stack(data);
  const end = Math.max(data.end, 1);
  const scroll = html("div", { id: "scroll" });
  const main = svg("svg", { height, class: "main" });
  const labels = svg("svg", { width: GUTTER, height, class: "labels" });
  const ticks = svg("g", { class: "ticks" }); // first: behind everything
  main.append(ticks);
  // What zooming moves: [element, start, end, kind, text], kind "rect" (a
  // fault band), "label" (its name), "pointer" (above an evidence bar),
  // "bar" (a role or an operation: a <g> of rect, text, title) or "mark"
  // (an evidence bar: at least 4 px wide).
  const placed = [];

  data.lanes.forEach((name, i) => labels.append(svg("text", { x: 4, y: tops[i] + 14 }, name)));
  for (let r = 0; r < data.replicas; r++) {
    labels.append(svg("text", { x: 4, y: AXIS + r * (ROW + 2) + 14, class: "role" }, `replica-${r}`));
  }
  data.faults.forEach((f, i) => {
    const band = svg("rect", { class: "fault", y: 16, height: height - 16 });
    const label = svg("text", { class: "fault-label", y: 27 + (i % 2) * 12 }, f.label);
    band.append(svg("title", {}, `${f.label}: ${time(f.start)} – ${time(f.end)}`));
    main.append(band, label);
    placed.push([band, f.start, f.end, "rect"], [label, f.start, f.end, "label"]);
  });
  for (const s of data.roles) {
    const text = `${s.role} e${s.epoch}`;
    const g = svg("g", { class: "role" },
      svg("rect", { y: AXIS + s.replica * (ROW + 2), height: ROW - 2 }),
      svg("text", { y: AXIS + s.replica * (ROW + 2) + 13 }, text),
      svg("title", {}, `replica-${s.replica} ${text}: ${time(s.start)} – ${time(s.end)}`));
    main.append(g);
    placed.push([g, s.start, s.end, "bar", text]);
  }
  for (const op of data.ops) {
    const cls = ["op", op.kind, op.violation ? "violation" : "", op.prefix ? "prefix" : ""];
    const y = tops[op.lane] + op.row * ROW;
    const done = op.end == null ? "unfinished" : time(op.end);
    const g = svg("g", { class: cls.join(" ").trim(), "data-op-index": op.index },
      svg("rect", { y: y + 1, height: ROW - 3, rx: 2 }),
      svg("text", { y: y + 13 }, op.label),
      svg("title", {}, `#${op.index} ${op.label} (${op.kind}) ${time(op.start)} – ${done}`));
    main.append(g);
    placed.push([g, op.start, op.end ?? end, op.violation ? "mark" : "bar", op.label]);
    if (op.violation) { // a pointer above the lanes, seen at any zoom
      const pointer = svg("text", { class: "pointer", y: AXIS - 2 }, "▼");
      main.append(pointer);
      placed.push([pointer, op.start, op.start, "pointer"]);
    }
  }
  scroll.append(main);
  document.getElementById("timeline").append(labels, scroll);

  // As much of a label as a bar `w` px wide holds (about 6.5 px a character).
  function fitted(text, w) {
    const room = Math.floor((w - 6) / 6.5);
    return room >= text.length ? text : room < 4 ? "" : text.slice(0, room - 1) + "…";
  }
  let scale = 0; // pixels per nanosecond
  const fit = () => (scroll.clientWidth - 20) / end;
  function layout() {
    main.setAttribute("width", Math.ceil(end * scale) + 20);
    for (const [el, start, stop, kind, text] of placed) {
      const x = start * scale, w = Math.max(kind === "mark" ? 4 : 1, (stop - start) * scale);
      if (kind === "label") { el.setAttribute("x", x + 2); continue; }
      if (kind === "pointer") { el.setAttribute("x", x - 4); continue; }
      if (kind === "rect") { el.setAttribute("x", x); el.setAttribute("width", w); continue; }
      el.firstChild.setAttribute("x", x);
      el.firstChild.setAttribute("width", w);
    }
    texts();
    axis();
  }
  // Each bar's label, from the bar's start or, for a bar scrolled partly
  // out of view, from the left edge; only changed ones are touched.
  function texts() {
    const left = scroll.scrollLeft;
    for (const [el, start, stop, kind, text] of placed) {
      if (kind !== "bar" && kind !== "mark") continue;
      const x = Math.max(start * scale, Math.min(left, stop * scale - 40));
      const shown = fitted(text, stop * scale - x), label = el.children[1];
      if (label.getAttribute("x") !== String(x + 3)) label.setAttribute("x", x + 3);
      if (label.textContent !== shown) label.textContent = shown;
    }
  }
  // Ticks for the visible part only, 1-2-5 steps at least 80 px apart.
  function axis() {
    const from = scroll.scrollLeft / scale, to = (scroll.scrollLeft + scroll.clientWidth) / scale;
    const raw = 80 / scale, pow = 10 ** Math.max(0, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? raw;
    const digits = Math.max(0, Math.ceil(-Math.log10(step / 1e6))); // as many as the step needs
    const label = data.nanoseconds ? (t) => (t / 1e6).toFixed(digits) + " ms" : String;
    ticks.replaceChildren();
    for (let t = Math.floor(from / step) * step; t <= to; t += step) {
      ticks.append(svg("line", { x1: t * scale, x2: t * scale, y1: 2, y2: height }),
        svg("text", { x: t * scale + 3, y: 12 }, label(t)));
    }
  }
  function zoom(factor, at = scroll.clientWidth / 2) {
    const t = (scroll.scrollLeft + at) / scale;
    // At most 50 px per µs (or 200 per unit of a recorded history), and
    // 4 million px wide in all.
    const most = Math.max(fit(), Math.min(data.nanoseconds ? 0.05 : 200, 4e6 / end));
    scale = Math.min(Math.max(scale * factor, fit()), most);
    layout();
    scroll.scrollLeft = t * scale - at;
  }
  scroll.addEventListener("wheel", (e) => {
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) return; // horizontal scroll
    e.preventDefault();
    zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - scroll.getBoundingClientRect().left);
  }, { passive: false });
  scroll.addEventListener("scroll", () => { texts(); axis(); });
  document.getElementById("zoom-in").onclick = () => zoom(2);
  document.getElementById("zoom-out").onclick = () => zoom(0.5);
  document.getElementById("zoom-fit").onclick = () => { scale = fit(); layout(); };
  scale = fit();
  layout();
}

function legend() {
  const kinds = [["ok", "ok"], ["fail", "fail"], ["info", "info / unfinished"],
    ["violation", "named by the evidence"], ["prefix", "linearizable prefix"], ["fault", "fault window"]];
  document.getElementById("legend").append(
    ...kinds.map(([k, text]) => html("span", { class: "key " + k }, text)));
}

try {
  const data = JSON.parse(document.getElementById("data").textContent);
  if (!data.nanoseconds) time = String;
  header(data);
  legend();
  timeline(data);
  phases(data);
  if (document.body.dataset.rendered !== "error") document.body.dataset.rendered = "ok";
} catch (e) {
  fail(e && e.stack ? e.stack : e);
}
