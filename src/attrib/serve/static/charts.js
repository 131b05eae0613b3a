// Small SVG charts built with DOM calls (createElementNS, textContent): no markup from data.
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2457c5", "#d9730d", "#17804a", "#c0352b", "#7b4bc4", "#0f8b8d", "#a5682a", "#d14d99", "#5f6b7a"];
  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, anchor) {
    const t = el("text", { x, y, "text-anchor": anchor || "start" }, parent);
    t.textContent = content;
    return t;
  }
  function fmt(v) { return v === null || v === undefined ? "–" : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)); }

  // counts per bin over [low, high]: one bar chart
  function histogram(title, counts, low, high, colour) {
    const w = 220, h = 120, pad = 24;
    const svg = el("svg", { width: w, height: h, class: "chart", viewBox: `0 0 ${w} ${h}` });
    text(svg, 6, 12, title);
    const top = Math.max(1, ...counts);
    const bw = (w - 2 * pad) / counts.length;
    counts.forEach((c, i) => {
      const bh = (h - 2 * pad) * c / top;
      el("rect", { x: pad + i * bw, y: h - pad - bh, width: Math.max(1, bw - 1), height: bh, fill: colour || PALETTE[0] }, svg);
    });
    el("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#999" }, svg);
    text(svg, pad, h - 8, fmt(low));
    text(svg, w - pad, h - 8, fmt(high), "end");
    return svg;
  }

  // series: [{name, points: [[x, y], ...]}], y in [0, 1]
  function lines(title, series, xLabels) {
    const w = 420, h = 220, left = 36, right = 12, top = 22, bottom = 40;
    const svg = el("svg", { width: w, height: h, class: "chart", viewBox: `0 0 ${w} ${h}` });
    text(svg, 6, 14, title);
    const n = Math.max(2, xLabels.length);
    const x = (i) => left + (w - left - right) * i / (n - 1);
    const y = (v) => top + (h - top - bottom) * (1 - Math.max(0, Math.min(1, v)));
    for (const v of [0, 0.5, 1]) {
      el("line", { x1: left, y1: y(v), x2: w - right, y2: y(v), stroke: "#e3e6ec" }, svg);
      text(svg, left - 4, y(v) + 3, v.toFixed(1), "end");
    }
    xLabels.forEach((label, i) => {
      const anchor = i === 0 ? "start" : i === xLabels.length - 1 ? "end" : "middle";
      const t = text(svg, x(i), h - bottom + 12 + (i % 2) * 11, label, anchor);
      t.setAttribute("font-size", "9");
    });
    series.forEach((s, k) => {
      const pts = s.points.filter((p) => p[1] !== null).map((p) => `${x(p[0])},${y(p[1])}`).join(" ");
      el("polyline", { points: pts, fill: "none", stroke: PALETTE[k % PALETTE.length], "stroke-width": 2 }, svg);
    });
    return svg;
  }
  return { histogram, lines, PALETTE };
})();
