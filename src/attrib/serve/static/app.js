// The attrib explorer: run overview, sample, methods and live pages over the JSON API of
// `attrib serve`, or over the data a static export (`attrib explore`) put in data.js.
// Every label, class name, token and file name goes into the page as text (textContent,
// text nodes, attribute values): never as markup.
"use strict";

const STATIC = window.ATTRIB_DATA;
const view = document.getElementById("view");
const statusLine = document.getElementById("status");
let INFO = null;
let generation = 0; // a page drawn for an older route stops drawing

// -- DOM helpers -------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "value") node.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled") node[k] = Boolean(v);
    else node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function show(...children) { clear(view); for (const c of children.flat()) if (c) view.appendChild(c); }
function say(text) { statusLine.textContent = text || ""; }
function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toFixed(digits === undefined ? 3 : digits);
}
function select(name, options, current, onchange) {
  return h("select", { name, id: "sel-" + name, onchange },
    options.map(([value, label]) => h("option", { value, selected: String(value) === String(current ?? "") }, label)));
}
function enc(s) { return encodeURIComponent(s); }

// -- data: the API, or the static export's data ------------------------------------------

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

const Data = {
  info() { return STATIC ? Promise.resolve(STATIC.info) : getJSON("api/info"); },
  samples(run, q) {
    if (!STATIC) return getJSON(`api/runs/${enc(run)}/samples?` + new URLSearchParams(q));
    return Promise.resolve(staticPage(STATIC.rows[run], q));
  },
  sample(run, id) {
    if (!STATIC) return getJSON(`api/runs/${enc(run)}/sample?id=${enc(id)}`);
    const found = STATIC.details[run] && STATIC.details[run][id];
    return found ? Promise.resolve(found) : Promise.reject(new Error("no such sample"));
  },
  summary(run) { return STATIC ? Promise.resolve(STATIC.summaries[run]) : getJSON(`api/runs/${enc(run)}/summary`); },
  // a static site has no picture of a sample it could not draw: null
  thumb(run, id) { return STATIC ? (STATIC.files[run][id] || {}).thumb || null : `api/runs/${enc(run)}/thumb.png?id=${enc(id)}`; },
  input(run, id) { return STATIC ? (STATIC.files[run][id] || {}).input || null : `api/runs/${enc(run)}/input.png?id=${enc(id)}`; },
  map(run, id, method, cmap, mode, signed) {
    if (STATIC) {
      const chosen = mode === "auto" ? (signed ? "signed" : "absolute") : mode;
      return STATIC.files[run][id].maps[method][chosen];
    }
    return `api/runs/${enc(run)}/map.png?id=${enc(id)}&method=${enc(method)}&cmap=${enc(cmap)}&mode=${enc(mode)}`;
  },
};

function staticPage(rows, q) {
  let chosen = rows.filter((r) =>
    (q.class === undefined || q.class === "" || r.label === Number(q.class)) &&
    (!q.correct || r.correct === (q.correct === "true")) &&
    (!q.status || r.status === q.status));
  if (q.sort) {
    const sign = q.order === "desc" ? -1 : 1;
    const value = (r) => (r.scores[q.sort] === null || r.scores[q.sort] === undefined ? null : r.scores[q.sort]);
    chosen = chosen.map((r) => Object.assign({}, r, { sort_value: value(r) }));
    chosen.sort((a, b) => (a.sort_value === null) - (b.sort_value === null) ||
      sign * ((a.sort_value ?? 0) - (b.sort_value ?? 0)) || a.index - b.index);
  }
  const offset = Number(q.offset || 0), limit = Number(q.limit || 100);
  return { total: chosen.length, offset, rows: chosen.slice(offset, offset + limit) };
}

// -- routing -----------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: Object.fromEntries(new URLSearchParams(query || "")) };
}
function go(parts, query) {
  const q = new URLSearchParams(Object.entries(query || {}).filter(([, v]) => v !== "" && v !== undefined && v !== null));
  const text = q.toString();
  location.hash = "#/" + parts.map(enc).join("/") + (text ? "?" + text : "");
}

async function route() {
  const mine = ++generation;
  const { parts, query } = parseRoute();
  const page = parts[0] === "sample" ? "overview" : parts[0] || "overview";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === (parts[0] === "runs" ? "overview" : page));
  try {
    if (!INFO) INFO = await Data.info();
    document.getElementById("nav-live").hidden = Boolean(STATIC);
    if (parts[0] === "sample" && parts.length >= 3) await samplePage(parts[1], parts.slice(2).join("/"), query, mine);
    else if (parts[0] === "methods") await methodsPage(query, mine);
    else if (parts[0] === "live") await livePage(mine);
    else await overviewPage(parts[1] || (INFO.runs[0] && INFO.runs[0].name), query, mine);
  } catch (error) {
    if (mine === generation) show(h("p", { class: "error" }, "Error: " + error.message));
  }
}
window.addEventListener("hashchange", route);

// -- overview ----------------------------------------------------------------------------

function runInfo(name) {
  const found = INFO.runs.find((r) => r.name === name);
  if (!found) throw new Error("no such run");
  return found;
}

async function overviewPage(name, query, mine) {
  if (!name) { show(h("p", {}, "No run is served.")); return; }
  const run = runInfo(name);
  const q = {
    class: query.class ?? "", correct: query.correct ?? "", status: query.status ?? "",
    sort: query.sort ?? "", order: query.order ?? "asc",
    offset: Number(query.offset || 0), limit: Number(query.limit || 100),
  };
  const update = (changes) => go(["runs", name], Object.assign({}, q, { offset: 0 }, changes));
  say("loading samples…");
  const page = await Data.samples(name, q);
  if (mine !== generation) return;
  say("");
  const classOptions = [["", "all classes"], ...run.classes.map((c, i) => [i, c])];
  const sortOptions = [["", "source order"], ...run.score_columns.map((c) => [c.key, `${c.method} · ${c.metric}`])];
  const toolbar = h("div", { class: "toolbar" },
    h("label", {}, "run", select("run", INFO.runs.map((r) => [r.name, r.name]), name, (e) => go(["runs", e.target.value], {}))),
    h("label", {}, "class (label)", select("class", classOptions, q.class, (e) => update({ class: e.target.value }))),
    h("label", {}, "prediction", select("correct", [["", "all"], ["true", "correct"], ["false", "wrong"]], q.correct, (e) => update({ correct: e.target.value }))),
    h("label", {}, "status", select("status", [["", "all"], ["ok", "explained"], ["error", "error"]], q.status, (e) => update({ status: e.target.value }))),
    h("label", {}, "sort by", select("sort", sortOptions, q.sort, (e) => update({ sort: e.target.value }))),
    h("label", {}, "order", select("order", [["asc", "lowest first"], ["desc", "highest first"]], q.order, (e) => update({ order: e.target.value }))),
    h("label", {}, "per page", select("limit", [[10, 10], [50, 50], [100, 100], [200, 200]], q.limit, (e) => update({ limit: e.target.value }))),
  );
  // data-route: the route this grid answers (tests wait for it to be the current one)
  const grid = h("div", { class: "grid", id: "grid", "data-route": location.hash }, page.rows.map((row) => card(name, row)));
  const last = Math.min(page.total, q.offset + page.rows.length);
  const pager = h("div", { class: "pager" },
    h("button", { class: "secondary", id: "prev", disabled: q.offset <= 0, onclick: () => go(["runs", name], Object.assign({}, q, { offset: Math.max(0, q.offset - q.limit) })) }, "← previous"),
    h("span", { id: "range" }, page.total ? `${q.offset + 1}–${last} of ${page.total}` : "no sample matches"),
    h("button", { class: "secondary", id: "next", disabled: last >= page.total, onclick: () => go(["runs", name], Object.assign({}, q, { offset: q.offset + q.limit })) }, "next →"),
  );
  show(
    h("h1", {}, `Run ${run.name}`),
    h("p", { class: "muted" }, `${run.samples} samples (${run.errors} errors) · model ${run.model || "?"} · methods ${run.methods.map((m) => m.name).join(", ")} · target ${run.target}`),
    toolbar, pager, grid,
  );
}

function picture(src, alt, attrs) {
  return src ? h("img", Object.assign({ src, alt }, attrs || {})) : h("div", { class: "no-picture" }, "no picture");
}

function card(run, row) {
  if (row.text !== undefined) return textCard(run, row);
  const verdict = row.status !== "ok" ? h("span", { class: "badge err" }, "error")
    : row.correct === true ? h("span", { class: "badge ok" }, "✓ correct")
    : row.correct === false ? h("span", { class: "badge wrong" }, "✗ wrong") : null;
  return h("a", { class: "card", href: "#/sample/" + enc(run) + "/" + enc(row.id), title: row.id },
    picture(Data.thumb(run, row.id), row.name, { loading: "lazy", width: 96, height: 96 }),
    h("span", { class: "name" }, row.name),
    h("span", { class: "line" }, "label: ", row.label_name ?? "–"),
    h("span", { class: "line" }, "pred: ", row.prediction_name ?? "–"),
    h("span", { class: "line" }, verdict, row.sort_value !== undefined ? ` ${fmt(row.sort_value)}` : ""),
  );
}

function textCard(run, row) {
  const verdict = row.correct === true ? h("span", { class: "badge ok" }, "✓ correct") : row.correct === false ? h("span", { class: "badge wrong" }, "✗ wrong") : null;
  return h("a", { class: "card text-card", href: "#/sample/" + enc(run) + "/" + enc(row.id), title: row.id },
    h("span", { class: "name" }, row.name),
    h("span", { class: "snippet" }, row.text ?? ""),
    h("span", { class: "line" }, "label: ", row.label_name ?? "–"),
    h("span", { class: "line" }, "pred: ", row.prediction_name ?? "–"),
    h("span", { class: "line" }, verdict, row.sort_value !== undefined ? ` ${fmt(row.sort_value)}` : ""));
}

// -- sample ------------------------------------------------------------------------------

const viewState = { opacity: 0.7, cmap: "auto", mode: "auto", words: true };

async function samplePage(runName, id, query, mine) {
  const run = runInfo(runName);
  say("loading sample…");
  const sample = await Data.sample(runName, id);
  if (mine !== generation) return;
  say("");
  const back = h("a", { href: "#/runs/" + enc(runName) }, "← " + runName);
  const verdict = sample.status !== "ok" ? h("span", { class: "badge err" }, "error: " + (sample.error || ""))
    : sample.correct === true ? h("span", { class: "badge ok" }, "correct") : sample.correct === false ? h("span", { class: "badge wrong" }, "wrong") : null;
  const head = [back, h("h1", {}, sample.name), h("p", {}, "label: ", h("b", {}, sample.label_name ?? "–"), " · prediction: ", h("b", {}, sample.prediction_name ?? "–"), " ", verdict)];
  const scores = scoresTable(sample);
  const top = h("table", { id: "topk" }, h("tr", {}, h("th", {}, "top classes"), h("th", {}, "probability")),
    sample.top.map((t) => h("tr", {}, h("td", {}, t.name ?? String(t.class)), h("td", { class: "num" }, fmt(t.probability)))));
  if (run.kind === "text") {
    show(head, textView(sample), h("div", { class: "row" }, scores, top));
    return;
  }
  const figures = h("div", { class: "maps", id: "maps" });
  const layers = [];
  const draw = () => {
    clear(figures);
    layers.length = 0;
    figures.appendChild(h("figure", {}, h("div", { class: "stack" }, picture(Data.input(runName, sample.id), "input")), h("figcaption", {}, "input")));
    if (sample.status !== "ok") return;
    for (const m of sample.methods) {
      const layer = h("img", { class: "layer", src: Data.map(runName, sample.id, m.name, viewState.cmap, viewState.mode, m.signed), alt: m.name });
      layer.style.opacity = viewState.opacity;
      layers.push(layer);
      figures.appendChild(h("figure", {}, h("div", { class: "stack" }, picture(Data.input(runName, sample.id), "", { class: "base" }), layer), h("figcaption", {}, m.name, m.signed ? " (signed)" : "")));
    }
  };
  const slider = h("input", { type: "range", id: "opacity", min: 0, max: 1, step: 0.05, value: viewState.opacity,
    oninput: (e) => { viewState.opacity = Number(e.target.value); for (const l of document.querySelectorAll("img.layer")) l.style.opacity = viewState.opacity; } });
  const cmaps = STATIC ? [["auto", "auto"]] : [["auto", "auto"], ["inferno", "inferno"], ["viridis", "viridis"], ["magma", "magma"], ["gray", "gray"], ["RdBu_r", "RdBu_r"], ["coolwarm", "coolwarm"], ["bwr", "bwr"]];
  const controls = h("div", { class: "toolbar" },
    h("label", {}, "map opacity", slider),
    h("label", {}, "colour map", select("cmap", cmaps, viewState.cmap, (e) => { viewState.cmap = e.target.value; draw(); redrawLive(); })),
    h("label", {}, "values", select("mode", [["auto", "as the method (signed or not)"], ["signed", "signed"], ["absolute", "absolute"]], viewState.mode, (e) => { viewState.mode = e.target.value; draw(); redrawLive(); })),
  );
  draw();
  const live = h("div", { id: "live-panel" });
  let redrawLive = () => {};
  if (INFO.model && !STATIC) redrawLive = liveForSample(live, runName, sample);
  show(head, controls, figures, live, h("h2", {}, "Scores"), h("div", { class: "row" }, scores, top));
}

function scoresTable(sample) {
  const methods = Object.keys(sample.scores);
  const metrics = [...new Set(methods.flatMap((m) => Object.keys(sample.scores[m])))];
  if (!metrics.length) return h("p", { class: "muted" }, "No metric was computed in this run.");
  return h("table", { id: "scores" },
    h("tr", {}, h("th", {}, "method"), metrics.map((m) => h("th", {}, m))),
    methods.map((m) => h("tr", {}, h("td", {}, m), metrics.map((k) => h("td", { class: "num" }, fmt(sample.scores[m][k]))))));
}

function tokenLine(tokens, scores, signed) {
  const top = Math.max(1e-12, ...scores.map((s) => Math.abs(s ?? 0)));
  return h("div", { class: "tokens" }, tokens.map((t, i) => {
    const v = (scores[i] ?? 0) / top;
    const span = h("span", { title: fmt(scores[i]) }, t);
    const a = Math.min(1, Math.abs(v));
    span.style.backgroundColor = signed ? (v >= 0 ? `rgba(214, 39, 40, ${a})` : `rgba(31, 119, 180, ${a})`) : `rgba(255, 127, 14, ${a})`;
    if (a > 0.6) span.style.color = "#fff";
    return span;
  }));
}

function textView(sample) {
  const box = h("div", { id: "token-views" });
  const draw = () => {
    clear(box);
    for (const [method, entry] of Object.entries(sample.tokens || {})) {
      // words: attrib.text.aggregate's merge of the pieces, done on the server
      const [tokens, scores] = viewState.words ? [entry.words, entry.word_scores] : [entry.tokens, entry.scores];
      box.appendChild(h("h2", {}, method, entry.signed ? " (signed: red for, blue against)" : ""));
      box.appendChild(tokenLine(tokens, scores, entry.signed));
    }
  };
  const toggle = h("label", {}, h("input", { type: "checkbox", id: "words", checked: viewState.words, onchange: (e) => { viewState.words = e.target.checked; draw(); } }), " merge word pieces into words");
  draw();
  return h("div", {}, sample.text ? h("p", { class: "muted" }, sample.text) : null, toggle, box);
}

// -- jobs on the server (sample page and live page) ---------------------------------------

function methodChecks(names, checked) {
  return h("div", { class: "checks" }, names.map((n) => h("label", {}, h("input", { type: "checkbox", name: "method", value: n, checked: checked.includes(n) }), n)));
}
function checkedMethods(box) { return [...box.querySelectorAll("input[name=method]:checked")].map((i) => i.value); }
function targetSelect(id, current) {
  const classes = INFO.model.classes;
  return select(id, [["predicted", "the predicted class"], ...classes.map((c, i) => [i, `${i}: ${c}`])], current ?? "predicted", null);
}

// runs a job, polls its state into `progress`, draws its maps into `out`; returns a redraw
function runJob(body, out, progress, cancelButton) {
  let job = null, stopped = false;
  const draw = () => {
    if (!job) return;
    clear(out);
    for (const name of job.done) {
      if (job.errors[name]) { out.appendChild(h("figure", {}, h("p", { class: "error" }, name + ": " + job.errors[name]))); continue; }
      const tokens = job.tokens && job.tokens[name];
      if (tokens) {
        const [words, scores] = viewState.words ? [tokens.words, tokens.word_scores] : [tokens.tokens, tokens.scores];
        out.appendChild(h("div", { class: "computed text-result" }, h("h2", {}, `${name} for ${job.target_name ?? job.target} (${fmt(job.seconds[name], 2)} s)`), tokenLine(words, scores, tokens.signed)));
        continue;
      }
      const layer = h("img", { class: "layer", src: `api/jobs/${enc(job.job)}/map.png?method=${enc(name)}&cmap=${enc(viewState.cmap)}&mode=${enc(viewState.mode)}`, alt: name });
      layer.style.opacity = viewState.opacity;
      out.appendChild(h("figure", { class: "computed" }, h("div", { class: "stack" }, h("img", { class: "base", src: `api/jobs/${enc(job.job)}/input.png`, alt: "" }), layer),
        h("figcaption", {}, `${name} for ${job.target_name ?? job.target} (${fmt(job.seconds[name], 2)} s)`)));
    }
  };
  const poll = async () => {
    job = await getJSON(`api/jobs/${enc(job.job)}?wait=1000`);
    progress.value = job.progress;
    say(`${job.state}${job.current ? ": " + job.current + " (" + job.passes + " passes)" : ""}`);
    draw();
    if (job.state === "queued" || job.state === "running") { if (!stopped) poll().catch(fail); }
    else { cancelButton.disabled = true; if (job.errors.job) out.appendChild(h("p", { class: "error" }, job.errors.job)); }
  };
  const fail = (error) => { say(""); out.appendChild(h("p", { class: "error" }, "Error: " + error.message)); cancelButton.disabled = true; };
  cancelButton.disabled = false;
  cancelButton.onclick = async () => { if (job) { job = await getJSON(`api/jobs/${enc(job.job)}`, { method: "DELETE" }); say("cancelled"); } };
  getJSON("api/jobs", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    .then((made) => { job = made; return poll(); }).catch(fail);
  window.addEventListener("hashchange", () => { stopped = true; }, { once: true });
  return draw;
}

function liveForSample(panel, runName, sample) {
  const names = INFO.model.methods.map((m) => m.name);
  const checks = methodChecks(names, sample.methods.map((m) => m.name).filter((n) => names.includes(n)).slice(0, 1));
  const target = targetSelect("target", "predicted");
  const progress = h("progress", { max: 1, value: 0, id: "job-progress" });
  const cancel = h("button", { class: "secondary", id: "cancel", disabled: true }, "cancel");
  const out = h("div", { class: "maps", id: "computed" });
  let redraw = () => {};
  const explain = h("button", { id: "explain", onclick: () => { redraw = runJob({ run: runName, id: sample.id, methods: checkedMethods(checks), target: target.value }, out, progress, cancel); } }, "compute on the server");
  panel.appendChild(h("h2", {}, `Another class or method (model: ${INFO.model.label})`));
  panel.appendChild(h("div", { class: "toolbar" }, h("label", {}, "target class", target), explain, cancel, progress));
  panel.appendChild(checks);
  panel.appendChild(out);
  return () => redraw();
}

// -- methods -----------------------------------------------------------------------------

async function methodsPage(query, mine) {
  const names = INFO.runs.map((r) => r.name);
  const a = query.a || names[0];
  const b = query.b || "";
  const toolbar = h("div", { class: "toolbar" },
    h("label", {}, "run", select("run-a", names.map((n) => [n, n]), a, (e) => go(["methods"], { a: e.target.value, b }))),
    h("label", {}, "beside it", select("run-b", [["", "(none)"], ...names.map((n) => [n, n])], b, (e) => go(["methods"], { a, b: e.target.value }))),
  );
  say("loading summaries…");
  const chosen = [a, b].filter(Boolean);
  const summaries = await Promise.all(chosen.map((n) => Data.summary(n)));
  if (mine !== generation) return;
  say("");
  show(h("h1", {}, "Methods"), toolbar, h("div", { class: "columns" }, summaries.map((s) => summaryPanel(s))));
}

function summaryPanel(s) {
  const v = s.verdict;
  const metrics = v.metrics.map((m) => m.name);
  const table = h("table", { class: "verdict" },
    h("tr", {}, h("th", {}, "#"), h("th", {}, "method"), h("th", {}, "verdict"), metrics.map((m) => h("th", {}, m, h("div", { class: "muted" }, `${v.metrics.find((x) => x.name === m).direction || "?"} is better`))), h("th", {}, "sanity: kept")),
    v.methods.map((m) => h("tr", {},
      h("td", { class: "num" }, m.rank), h("td", {}, m.method), h("td", { class: "verdict-cell" }, h("span", { class: "trust-" + m.trust }, m.trust), h("div", { class: "muted" }, m.reason)),
      metrics.map((k) => {
        const st = m.stats[k], c = m.comparisons[k];
        return h("td", { class: "num" }, st ? `${fmt(st.mean)} ± ${fmt(st.se)}` : "–", c ? h("div", { class: "muted" }, `${c.outcome} vs random ${fmt(c.random)}`) : null);
      }),
      h("td", { class: "num" }, m.sanity ? `${fmt(m.sanity.kept, 2)} ${m.sanity.passed ? "✓" : "✗"}` : "–"))));
  const panel = h("div", { class: "panel" }, h("h2", {}, `Run ${s.run}`),
    h("ul", {}, v.sentences.map((t) => h("li", {}, t))), table);
  if (s.sanity.length) {
    const steps = s.sanity[0].steps.map((st) => (st.step === 0 ? "none" : st.layer));
    const series = s.sanity.map((c) => ({ name: c.method, points: c.steps.map((st, i) => [i, st.mean]) }));
    panel.appendChild(h("h2", {}, "Sanity check: similarity to the trained model's map as layers are randomized"));
    panel.appendChild(Charts.lines("mean similarity (|Spearman|) per randomized layer, top first", series, steps));
    panel.appendChild(h("div", { class: "legend" }, series.map((x, k) => h("span", {}, legendSwatch(k), x.name))));
  }
  if (s.histograms.length) {
    panel.appendChild(h("h2", {}, "Score distributions"));
    const byMetric = {};
    for (const hist of s.histograms) (byMetric[hist.metric] = byMetric[hist.metric] || []).push(hist);
    for (const [metric, list] of Object.entries(byMetric)) {
      panel.appendChild(h("h3", {}, metric));
      panel.appendChild(h("div", { class: "charts" }, list.map((x, k) => Charts.histogram(`${x.method} (mean ${fmt(x.mean)})`, x.counts, x.low, x.high, Charts.PALETTE[k % Charts.PALETTE.length]))));
    }
  }
  const byClass = v.by_class;
  if (byClass && byClass.classes.length && metrics.length) {
    const methods = Object.keys(byClass.classes[0].methods);
    panel.appendChild(h("h2", {}, `Per class (by ${byClass.column}): mean ${metrics[0]}`));
    panel.appendChild(h("table", { class: "by-class" },
      h("tr", {}, h("th", {}, "class"), methods.map((m) => h("th", {}, m))),
      byClass.classes.map((c) => h("tr", {}, h("td", {}, c.name ?? String(c.class)),
        methods.map((m) => { const st = (c.methods[m] || {})[metrics[0]]; return h("td", { class: "num" }, st ? `${fmt(st.mean)} (n=${st.n})` : "–"); })))));
  }
  if (v.notes.length) panel.appendChild(h("ul", { class: "muted" }, v.notes.map((t) => h("li", {}, t))));
  return panel;
}
function legendSwatch(k) { const i = h("i"); i.style.background = Charts.PALETTE[k % Charts.PALETTE.length]; return i; }

// -- live --------------------------------------------------------------------------------

async function livePage(mine) {
  if (!INFO.model) {
    show(h("h1", {}, "Live"), h("p", { class: "notice" }, "No model is loaded. Start the explorer with a model to explain uploaded images: attrib serve RUN --model resnet18 --weights r18.pth"));
    return;
  }
  if (INFO.model.kind === "text") { liveText(mine); return; }
  const limit = INFO.max_upload_bytes;
  const file = h("input", { type: "file", id: "file", accept: "image/*" });
  const names = INFO.model.methods.map((m) => m.name);
  const checks = methodChecks(names, names.filter((n) => n === "GradCAM" || n === "Saliency"));
  const target = targetSelect("live-target", "predicted");
  const progress = h("progress", { max: 1, value: 0, id: "job-progress" });
  const cancel = h("button", { class: "secondary", id: "cancel", disabled: true }, "cancel");
  const uploaded = h("div", { id: "uploaded" });
  const out = h("div", { class: "maps", id: "computed" });
  let upload = null;
  const explain = h("button", { id: "explain", disabled: true, onclick: () => runJob({ upload: upload.upload, methods: checkedMethods(checks), target: target.value }, out, progress, cancel) }, "explain");
  file.addEventListener("change", async () => {
    clear(uploaded); clear(out); explain.disabled = true;
    const chosen = file.files[0];
    if (!chosen) return;
    if (chosen.size > limit) { uploaded.appendChild(h("p", { class: "error" }, `The file is larger than the limit (${(limit / 1048576).toFixed(0)} MiB).`)); return; }
    say("uploading…");
    try {
      upload = await getJSON("api/uploads", { method: "POST", headers: { "content-type": "application/octet-stream" }, body: chosen });
      say("");
      uploaded.appendChild(h("div", { class: "row" },
        h("figure", {}, h("div", { class: "stack" }, h("img", { src: `api/uploads/${enc(upload.upload)}/input.png`, alt: chosen.name })), h("figcaption", {}, chosen.name)),
        h("table", { id: "live-top" }, h("tr", {}, h("th", {}, "the model says"), h("th", {}, "probability")),
          upload.top.map((t) => h("tr", {}, h("td", {}, t.name ?? String(t.class)), h("td", { class: "num" }, fmt(t.probability)))))));
      explain.disabled = false;
    } catch (error) {
      say("");
      uploaded.appendChild(h("p", { class: "error", id: "upload-error" }, error.message));
    }
  });
  if (mine !== generation) return;
  show(h("h1", {}, "Live"),
    h("p", { class: "muted" }, `Model: ${INFO.model.label}. Upload an image (at most ${(limit / 1048576).toFixed(0)} MiB), choose methods and a target class.`),
    h("div", { class: "toolbar" }, h("label", {}, "image", file), h("label", {}, "target class", target), explain, cancel, progress),
    checks, uploaded, out);
}

function liveText(mine) {
  const names = INFO.model.methods.map((m) => m.name);
  const checks = methodChecks(names, names.filter((n) => n === "IntegratedGradients" || n === "Saliency"));
  const text = h("textarea", { id: "text", rows: 3, cols: 80, maxlength: INFO.model.max_text_chars, placeholder: "a text to explain" });
  const target = targetSelect("live-target", "predicted");
  const progress = h("progress", { max: 1, value: 0, id: "job-progress" });
  const cancel = h("button", { class: "secondary", id: "cancel", disabled: true }, "cancel");
  const out = h("div", { id: "computed" });
  const explain = h("button", { id: "explain", onclick: () => { clear(out); runJob({ text: text.value, methods: checkedMethods(checks), target: target.value }, out, progress, cancel); } }, "explain");
  if (mine !== generation) return;
  show(h("h1", {}, "Live"),
    h("p", { class: "muted" }, `Model: ${INFO.model.label}. Type a text, choose methods and a target class; words are the sum of their pieces.`),
    h("div", { class: "toolbar" }, h("label", {}, "text", text), h("label", {}, "target class", target), explain, cancel, progress),
    checks, out);
}

route();
