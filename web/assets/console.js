// The console's only script: typed confirmations and the lag history chart (own SVG).
// Pages work without it; it never fetches anything but the chart's JSON.
"use strict";

// Delete buttons stay disabled until the name is typed exactly.
function setupConfirmations() {
  document.querySelectorAll("form[data-confirm-name]").forEach((form) => {
    const input = form.querySelector("input[name=confirm]");
    const button = form.querySelector("button[type=submit]");
    if (!input || !button) return;
    const sync = () => { button.disabled = input.value !== form.dataset.confirmName; };
    input.addEventListener("input", sync);
    sync();
  });
}

const SVG = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtTime(ms, span) {
  const d = new Date(ms);
  const hm = d.toISOString().slice(11, 16);
  return span > 86400000 ? d.toISOString().slice(5, 10) + " " + hm : hm;
}

// Draws [[ts, lag], ...] as a line with axes into `box`.
function drawChart(box, points) {
  box.textContent = "";
  const w = box.clientWidth || 800, h = box.clientHeight || 220;
  const pad = { l: 60, r: 10, t: 10, b: 24 };
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, id: "lag-chart-svg", role: "img" });
  if (points.length === 0) {
    svg.appendChild(el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", fill: "currentColor" }, "no samples yet"));
    box.appendChild(svg);
    return;
  }
  const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
  // A null value is a cycle that did not measure the group: the line breaks there.
  const vmax = Math.max(1, ...points.filter((p) => p[1] !== null).map((p) => p[1]));
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / vmax) * (h - pad.t - pad.b);
  svg.appendChild(el("line", { x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b, stroke: "currentColor", "stroke-opacity": ".3" }));
  svg.appendChild(el("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: h - pad.b, stroke: "currentColor", "stroke-opacity": ".3" }));
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(el("text", { x: pad.l - 6, y: y(vmax * f) + 4, "text-anchor": "end", "font-size": "11", fill: "currentColor" }, String(Math.round(vmax * f))));
  }
  for (const f of [0, 0.5, 1]) {
    const t = t0 + (t1 - t0) * f;
    svg.appendChild(el("text", { x: x(t), y: h - 6, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle", "font-size": "11", fill: "currentColor" }, fmtTime(t, t1 - t0)));
  }
  let pen = "M";
  const d = points.map((p) => {
    if (p[1] === null) { pen = "M"; return ""; }
    const s = `${pen}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`;
    pen = "L";
    return s;
  }).filter((s) => s).join(" ");
  box.dataset.gaps = String(points.filter((p) => p[1] === null).length);
  svg.appendChild(el("path", { d, fill: "none", stroke: "var(--accent)", "stroke-width": "2", class: "lag-line" }));
  box.appendChild(svg);
}

function setupLagChart() {
  const box = document.getElementById("lag-chart");
  if (!box) return;
  const group = box.dataset.group;
  const load = (range) => {
    fetch(`/groups/${encodeURIComponent(group)}/lag-history?range=${range}`, { headers: { Accept: "application/json" } })
      .then((r) => r.json())
      .then((data) => { box.dataset.range = range; box.dataset.points = String(data.points.length); drawChart(box, data.points); })
      .catch((e) => { box.textContent = "cannot load the lag history: " + e; });
  };
  document.querySelectorAll("#lag-chart-ranges button").forEach((b) => {
    b.addEventListener("click", () => {
      document.querySelectorAll("#lag-chart-ranges button").forEach((o) => o.classList.toggle("active", o === b));
      load(b.dataset.range);
    });
  });
  load("1h");
}

// Reassignment page: polls the page's JSON form once a second and redraws the progress
// rows; reloads once the console's reassignment changes state (completed, cancelled).
function setupReassignProgress() {
  const table = document.getElementById("reassign-progress");
  const status = document.getElementById("reassign-status");
  if (!table || !status) return;
  const body = table.querySelector("tbody");
  const html = (name, attrs, text) => {
    const e = document.createElement(name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const num = (v, unit) => (v === null || v === undefined ? "-" : Math.round(v) + unit);
  async function tick() {
    try {
      const r = await fetch(table.dataset.poll, { headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const page = await r.json();
      if (page.status !== status.dataset.status) {
        window.location.reload();
        return;
      }
      body.replaceChildren(...page.progress.map((p) => {
        const tr = html("tr", { "data-topic": p.topic, "data-partition": p.partition, "data-replica": p.replica });
        for (const cell of [p.topic + "-" + p.partition, p.replica, p.replicas.join(","), p.copied,
          p.total, p.remaining, num(p.rate, " B/s"), num(p.eta_seconds, " s"), Math.round(p.percent)]) {
          tr.appendChild(html("td", {}, String(cell)));
        }
        return tr;
      }));
      for (const s of page.executed || []) {
        const cell = document.querySelector(
          `#reassign-plan-state tr[data-topic="${CSS.escape(s.topic)}"][data-partition="${s.partition}"] td.percent`);
        if (cell) cell.textContent = s.percent === null ? "-" : String(Math.round(s.percent));
      }
    } catch (e) {
      // The next tick tries again.
    }
  }
  if (status.dataset.status === "in-progress" || body.children.length > 0) {
    setInterval(tick, 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupConfirmations();
  setupLagChart();
  setupReassignProgress();
});
