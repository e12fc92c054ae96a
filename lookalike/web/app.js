// The merchandisers' page: a thin client of the JSON API (/search, /products, /clusters, /map,
// /sessions). DOM is built with textContent only, so catalogue text can never inject markup.
// The page keeps a shopper session: views, likes and dislikes are posted as events, and the
// "For you" view is the catalogue sorted by the anchors the session implies (/search?session_id).

const PAGE = 24;
const THUMB = 160;

const state = {
  q: "",
  anchors: [], // [{id, weight, title}]
  negatives: [], // [{id, title}]
  similarTo: null, // product id of a "more like this" query
  offset: 0,
  total: 0,
  hits: [],
  seq: 0, // queries started; only the latest one's answer is shown
  forYou: false, // the "For you" view: sorted by the session, not by q or the chips
  sessionId: null, // this browser's session (localStorage), made up here like a storefront would
  session: null, // the last answer's session block
  scored: false, // the shown hits were scored (anchors, keywords, a session); browsing is not
};

const SESSION_KEY = "lookalike.session";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const svg = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
};

export const thumbUrl = (id, size = THUMB) =>
  `/products/${encodeURIComponent(id)}/images/0?size=${size}`;

// ---- API ------------------------------------------------------------------------------------

class ApiError extends Error {}

// GET a JSON route; the query leaves out empty parameters.
async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) query.set(key, String(value));
  }
  const qs = query.toString();
  return send("GET", qs ? `${path}?${qs}` : path);
}

// One request: the JSON answer, null for a 204, or an ApiError with the API's message.
async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`The server cannot be reached (${err.message}).`);
  }
  if (response.status === 204) return null;
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (!response.ok) {
    throw new ApiError(answer && answer.error ? answer.error.message : `HTTP ${response.status}`);
  }
  return answer;
}

function showError(err) {
  const box = $("error");
  box.textContent = err instanceof ApiError ? err.message : `Unexpected error: ${err}`;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function filters() {
  const value = (id) => $(id).value.trim();
  return {
    category: value("category"),
    color: value("color"),
    brand: value("brand"),
    price_min: value("price_min"),
    price_max: value("price_max"),
  };
}

const weighted = (items) =>
  items.map((a) => (a.weight && a.weight !== 1 ? `${a.id}:${a.weight}` : a.id)).join(",");

// ---- session --------------------------------------------------------------------------------

function newSessionId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function sessionId() {
  if (!state.sessionId) {
    let id = null;
    try {
      id = localStorage.getItem(SESSION_KEY);
    } catch {
      id = null; // storage off: the session lasts as long as the page
    }
    if (!id || !/^[A-Za-z0-9_-]{8,128}$/.test(id)) {
      id = newSessionId();
      try {
        localStorage.setItem(SESSION_KEY, id);
      } catch {
        // storage off
      }
    }
    state.sessionId = id;
  }
  return state.sessionId;
}

const sessionPath = () => `/sessions/${encodeURIComponent(sessionId())}`;

function sessionNote(text) {
  $("session-status").textContent = text;
}

// A shopper's action as a session event. A refused or failed post never blocks browsing: the
// note says the session is off and the page goes on without it.
async function record(type, productId) {
  try {
    const body = await send("POST", `${sessionPath()}/events`,
      { events: [{ type, product_id: productId }] });
    sessionNote(`Session: ${body.events} event${body.events === 1 ? "" : "s"}`);
    document.body.dataset.events = String(body.events); // tests wait on this
  } catch (err) {
    sessionNote(`Session off: ${err.message}`);
  }
}

async function forgetSession() {
  try {
    await send("DELETE", sessionPath());
    sessionNote("Session forgotten");
  } catch (err) {
    sessionNote(`Session off: ${err.message}`);
  }
  state.sessionId = null;
  try {
    localStorage.removeItem(SESSION_KEY);
  } catch {
    // storage off
  }
  document.body.dataset.events = "0";
  if (state.forYou) runQuery();
}

function setForYou(on) {
  state.forYou = on;
  $("for-you").setAttribute("aria-pressed", String(on));
}

// What /search needs for the "For you" view: the session when it implies anchors, otherwise
// (nothing viewed or liked yet) the plain listing, said so in the status line.
async function forYouParams(params) {
  let session;
  try {
    session = await api(sessionPath());
  } catch (err) {
    sessionNote(`Session off: ${err.message}`);
    return { params, empty: true };
  }
  if (!session.anchors.length) return { params, empty: true };
  return { params: { ...params, session_id: sessionId() }, empty: false };
}

// ---- results --------------------------------------------------------------------------------

async function runQuery({ append = false } = {}) {
  clearError();
  if (!append) state.offset = 0;
  const params = {
    ...filters(),
    // The API scores dislikes relative to likes: they apply once something is liked.
    negative_ids: state.anchors.length ? weighted(state.negatives) : "",
    explain: "true",
    k: PAGE,
    offset: state.offset,
  };
  let path = "/search";
  let empty = false;
  if (state.forYou) {
    params.negative_ids = "";
  } else if (state.similarTo) {
    path = `/products/${encodeURIComponent(state.similarTo)}/similar`;
    params.anchor_ids = weighted(state.anchors.filter((a) => a.id !== state.similarTo));
  } else {
    params.q = state.q;
    params.anchor_ids = weighted(state.anchors);
  }
  $("status").textContent = "Searching…";
  const seq = ++state.seq;
  document.body.dataset.busy = "true";
  try {
    let query = params;
    if (state.forYou) ({ params: query, empty } = await forYouParams(params));
    const body = await api(path, query);
    if (seq !== state.seq) return;
    state.session = empty ? { empty: true } : body.session || null;
    // Browsing by filters alone scores every hit 0: no score is shown then.
    state.scored = Boolean(state.similarTo || query.anchor_ids || query.q || query.session_id);
    state.total = body.total;
    state.hits = append ? state.hits.concat(body.hits) : body.hits;
    renderResults(append ? body.hits : state.hits, append);
  } catch (err) {
    if (seq !== state.seq) return;
    $("status").textContent = "";
    if (!append) $("results").replaceChildren();
    showError(err);
  } finally {
    if (seq === state.seq) {
      document.body.dataset.busy = "false";
      document.body.dataset.done = String(seq); // tests wait on this
    }
  }
}

function describe() {
  if (state.forYou) {
    const s = state.session;
    if (!s || s.empty) return "for you: nothing viewed or liked yet, so all products";
    const n = s.anchors.length;
    const not = s.negatives.length ? `, away from ${s.negatives.length} dismissed` : "";
    return `for you: sorted by ${n} product${n === 1 ? "" : "s"} you looked at or liked${not}`;
  }
  if (state.similarTo) return `more like ${state.similarTo}`;
  const parts = [];
  if (state.q) parts.push(`“${state.q}”`);
  if (state.anchors.length) {
    parts.push(state.q ? "re-sorted by similarity" : "sorted by similarity");
  }
  if (state.negatives.length && !state.anchors.length) {
    parts.push("dislikes apply once a product is liked");
  }
  return parts.join(", ") || "all products";
}

function renderResults(hits, append) {
  const list = $("results");
  if (!append) list.replaceChildren();
  list.append(...hits.map(resultCard));
  const shown = state.hits.length;
  $("status").textContent = shown
    ? `${shown} of ${state.total} results (${describe()})`
    : `No results (${describe()})`;
  state.offset = shown;
  $("load-more").hidden = shown >= state.total;
}

function resultCard(hit) {
  const meta = [hit.brand, hit.category, hit.color].filter(Boolean).join(" · ");
  const price = hit.price === null || hit.price === undefined ? "" : hit.price.toFixed(2);
  const img = el("img", {
    src: thumbUrl(hit.id),
    alt: hit.title || hit.id,
    width: THUMB,
    height: THUMB,
    "data-testid": "thumb",
  });
  img.addEventListener("error", () => img.classList.add("broken"));
  const title = hit.title || hit.id;
  return el(
    "li",
    {
      class: "card",
      "data-testid": "result",
      dataset: { id: hit.id, category: hit.category || "" },
    },
    img,
    el("h3", { class: "title", "data-testid": "title" }, title),
    el("p", { class: "meta" }, meta, price ? el("span", { class: "price" }, ` ${price}`) : null),
    state.scored
      ? el("p", { class: "score", "data-testid": "score" }, `score ${hit.score.toFixed(3)}`)
      : null,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", "data-testid": "like", "aria-label": `Like ${title}`,
        onclick: () => like(hit) }, "Like"),
      el("button", { type: "button", "data-testid": "dislike", "aria-label": `Dislike ${title}`,
        onclick: () => dislike(hit) }, "Dislike"),
      el("button", { type: "button", "data-testid": "more-like-this",
        "aria-label": `More like ${title}`, onclick: () => moreLikeThis(hit) }, "More like this"),
      el("button", { type: "button", "data-testid": "sort-similar",
        "aria-label": `Sort ${hit.category || "all"} by similarity to ${title}`,
        onclick: () => sortBySimilar(hit) }, "Sort by similar"),
    ),
    state.scored && hit.explanation ? explanation(hit.explanation) : null,
  );
}

const num = (x) => (typeof x === "number" ? x.toFixed(3) : "");
const show = (x) => (typeof x === "number" ? x.toFixed(3) : JSON.stringify(x));

function titleOf(id) {
  const known = state.anchors.concat(state.negatives).find((a) => a.id === id);
  return known && known.title ? known.title : id;
}

const COLUMNS = [
  ["signal", "what is compared"],
  ["w", "weight of the signal"],
  ["value", "similarity to the anchors, or the normalised keyword score"],
  ["adds", "weight × value: what the signal adds to the score"],
];

function explanation(expl) {
  const signals = Object.entries(expl.signals || {});
  const rows = signals.map(([name, s]) =>
    el("tr", { "data-testid": "signal", dataset: { signal: name } },
      el("th", { scope: "row" }, name), el("td", {}, num(s.weight)), el("td", {}, num(s.value)),
      el("td", {}, num(s.contribution))));
  const raw = signals.filter(([, s]) => typeof s.raw === "number")
    .map(([name, s]) => el("p", { class: "raw" }, `${name} raw score ${num(s.raw)}`));
  const perAnchor = (title, group) => {
    const entries = Object.entries(group || {});
    if (!entries.length) return null;
    return el("div", { class: "per-anchor" }, el("h4", {}, title),
      el("ul", {}, entries.map(([id, values]) => el("li", {}, `${titleOf(id)}: `,
        Object.entries(values).map(([k, v]) => `${k} ${show(v)}`).join(", ")))));
  };
  return el(
    "details",
    { class: "explain", "data-testid": "explain" },
    el("summary", {}, "Why this score"),
    el("table", {},
      el("thead", {}, el("tr", {}, COLUMNS.map(([h, help]) =>
        el("th", { scope: "col", title: help }, h)))),
      el("tbody", {}, rows)),
    raw,
    perAnchor("Anchors", expl.anchors),
    perAnchor("Negatives", expl.negatives),
  );
}

// ---- anchors --------------------------------------------------------------------------------

function renderChips() {
  const chip = (item, kind) => {
    const remove = () => {
      state[kind] = state[kind].filter((a) => a.id !== item.id);
      if (kind === "anchors" && state.similarTo === item.id) state.similarTo = null;
      renderChips();
      runQuery();
    };
    const weight = kind === "anchors"
      ? el("input", { type: "number", min: "0.1", max: "1000", step: "0.1", value: item.weight,
        class: "weight", "aria-label": `Weight of ${item.title || item.id}`,
        "data-testid": "anchor-weight",
        onchange: (e) => { item.weight = Number(e.target.value) || 1; runQuery(); } })
      : null;
    return el("li", { class: `chip ${kind}`, "data-testid": kind === "anchors" ? "anchor-chip"
      : "negative-chip", dataset: { id: item.id } },
      el("img", { src: thumbUrl(item.id, 48), alt: "", width: 24, height: 24 }),
      el("span", {}, item.title || item.id), weight,
      el("button", { type: "button", class: "remove",
        "aria-label": `Remove ${item.title || item.id}`,
        "data-testid": "remove-chip", onclick: remove }, "×"));
  };
  $("anchor-chips").replaceChildren(...state.anchors.map((a) => chip(a, "anchors")));
  $("negative-chips").replaceChildren(...state.negatives.map((a) => chip(a, "negatives")));
}

async function like(hit) {
  await record("like", hit.id);
  state.negatives = state.negatives.filter((a) => a.id !== hit.id);
  if (!state.anchors.some((a) => a.id === hit.id)) {
    state.anchors.push({ id: hit.id, weight: 1, title: hit.title });
  }
  renderChips();
  runQuery();
}

async function dislike(hit) {
  await record("dismiss", hit.id);
  state.anchors = state.anchors.filter((a) => a.id !== hit.id);
  if (state.similarTo === hit.id) state.similarTo = null;
  if (!state.negatives.some((a) => a.id === hit.id)) {
    state.negatives.push({ id: hit.id, weight: 1, title: hit.title });
  }
  renderChips();
  runQuery();
}

async function moreLikeThis(hit) {
  await record("view", hit.id);
  setForYou(false);
  state.similarTo = hit.id;
  state.anchors = [{ id: hit.id, weight: 1, title: hit.title }];
  state.negatives = state.negatives.filter((a) => a.id !== hit.id);
  renderChips();
  runQuery();
}

async function sortBySimilar(hit) {
  await record("view", hit.id);
  setForYou(false);
  state.similarTo = null;
  state.q = "";
  $("q").value = "";
  $("category").value = hit.category || "";
  if (!state.anchors.some((a) => a.id === hit.id)) {
    state.anchors.push({ id: hit.id, weight: 1, title: hit.title });
  }
  renderChips();
  runQuery();
}

// ---- clusters and map (part of the API only on servers that have /clusters and /map) ---------

async function showClusters() {
  clearError();
  const k = $("clusters-k").value;
  try {
    const body = await api("/clusters", { ...filters(), k });
    $("cluster-members").hidden = true;
    $("clusters").replaceChildren(...body.clusters.map((c) => {
      const rep = c.representative || {};
      return el("li", { class: "cluster", "data-testid": "cluster",
        dataset: { cluster: c.cluster, size: c.size } },
        el("button", { type: "button", "aria-label": `Cluster ${c.cluster}: ${rep.title || ""}`,
          onclick: () => showMembers(c) },
          el("img", { src: thumbUrl(rep.id, 96), alt: rep.title || rep.id, width: 96,
            height: 96, "data-testid": "cluster-thumb" }),
          el("span", {}, `${c.size} · ${rep.title || rep.id}`)));
    }));
  } catch (err) {
    showError(err);
  }
}

async function showMembers(cluster) {
  const ids = cluster.members.slice(0, 48);
  $("cluster-members-title").textContent =
    `Cluster ${cluster.cluster}: ${cluster.size} products` +
    (cluster.members.length > ids.length ? ` (first ${ids.length})` : "");
  const products = await Promise.all(ids.map((id) =>
    api(`/products/${encodeURIComponent(id)}`).catch(() => ({ id, title: id }))));
  $("cluster-members-list").replaceChildren(...products.map((p) =>
    el("li", { "data-testid": "cluster-member", dataset: { id: p.id, category: p.category || "" } },
      el("button", { type: "button", "aria-label": `More like ${p.title || p.id}`,
        onclick: () => moreLikeThis(p) },
        el("img", { src: thumbUrl(p.id, 64), alt: p.title || p.id, width: 64, height: 64 }),
        el("span", {}, p.title || p.id)))));
  $("cluster-members").hidden = false;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const OTHER = { name: "other", colour: "#c8c8c8" };

// The map's legend: the most common categories, one colour each, and the rest as one "other"
// entry (a catalogue with 100+ categories would otherwise list them all, in colours that
// repeat). Ties sort by name, so the legend is the same on every load.
export function legendOf(points, max = PALETTE.length - 1) {
  const counts = new Map();
  for (const p of points) {
    const c = p.category || "—";
    counts.set(c, (counts.get(c) || 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const fits = ranked.length <= max + 1; // one more category is better than "other (1)"
  const top = fits ? ranked : ranked.slice(0, max);
  const rest = fits ? [] : ranked.slice(max);
  const entries = top.map(([name, count], i) => ({ name, count, colour: PALETTE[i] }));
  if (rest.length) {
    entries.push({
      name: `${rest.length} ${OTHER.name} categories`,
      count: rest.reduce((sum, [, count]) => sum + count, 0),
      colour: OTHER.colour,
      other: true,
    });
  }
  const colours = new Map(top.map(([name], i) => [name, PALETTE[i]]));
  return { entries, colour: (c) => colours.get(c || "—") || OTHER.colour };
}

async function showMap() {
  clearError();
  try {
    const body = await api("/map", { ...filters(), limit: 2000 });
    drawMap(body.points);
  } catch (err) {
    showError(err);
  }
}

function drawMap(points) {
  const size = 420;
  const pad = 8;
  const legend = legendOf(points);
  const colour = legend.colour;
  const plot = svg("svg", { viewBox: `0 0 ${size} ${size}`, width: size, height: size,
    role: "img", "aria-label": `Map of ${points.length} products`, "data-testid": "map-svg" });
  const tooltip = $("map-tooltip");
  for (const p of points) {
    const dot = svg("circle", {
      cx: pad + p.x * (size - 2 * pad),
      cy: pad + (1 - p.y) * (size - 2 * pad),
      r: 4, fill: colour(p.category), "data-id": p.id, "data-testid": "map-point",
      tabindex: 0, "aria-label": p.title || p.id });
    const tip = svg("title");
    tip.textContent = p.title || p.id;
    dot.append(tip);
    dot.addEventListener("mouseenter", (e) => {
      tooltip.textContent = `${p.title || p.id}${p.category ? ` (${p.category})` : ""}`;
      const box = $("map-panel").getBoundingClientRect();
      tooltip.style.left = `${e.clientX - box.left + 12}px`;
      tooltip.style.top = `${e.clientY - box.top + 12}px`;
      tooltip.hidden = false;
    });
    dot.addEventListener("mouseleave", () => { tooltip.hidden = true; });
    dot.addEventListener("click", () => {
      const hit = { id: p.id, title: p.title, category: p.category };
      if ($("map-action").value === "like") like(hit);
      else moreLikeThis(hit);
    });
    plot.append(dot);
  }
  $("map").replaceChildren(plot);
  $("map-legend").replaceChildren(...legend.entries.map((e) =>
    el("li", { "data-testid": "legend-entry" },
      el("span", { class: "swatch", style: `background:${e.colour}` }), `${e.name} (${e.count})`)));
}

async function detectAnalysis() {
  try {
    const spec = await api("/openapi.json");
    const paths = spec.paths || {};
    const clusters = "/clusters" in paths;
    const map = "/map" in paths;
    $("clusters-panel").hidden = !clusters;
    $("map-panel").hidden = !map;
    $("analysis-missing").hidden = clusters && map;
    if (map) showMap();
  } catch {
    $("analysis-missing").hidden = false;
  }
}

// ---- wiring ---------------------------------------------------------------------------------

function init() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.q = $("q").value.trim();
    state.similarTo = null;
    setForYou(false);
    runQuery();
  });
  $("for-you").addEventListener("click", () => {
    setForYou(true);
    state.similarTo = null;
    state.q = "";
    $("q").value = "";
    runQuery();
  });
  $("forget-session").addEventListener("click", () => forgetSession());
  $("load-more").addEventListener("click", () => runQuery({ append: true }));
  $("clear-anchors").addEventListener("click", () => {
    state.anchors = [];
    state.negatives = [];
    state.similarTo = null;
    renderChips();
    runQuery();
  });
  $("clusters-form").addEventListener("submit", (e) => { e.preventDefault(); showClusters(); });
  $("map-form").addEventListener("submit", (e) => { e.preventDefault(); showMap(); });
  setForYou(false);
  renderChips();
  runQuery();
  detectAnalysis();
  document.body.dataset.ready = "true";
}

init();
