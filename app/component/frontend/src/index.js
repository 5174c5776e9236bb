// The dashboard's graph view, drawn and driven in the browser (a Streamlit Components v2 module).
//
// The corpus circuit page uses a third kind (data.kind "circuit", circuit.js).
// Two instances per graph page. The chart (data.kind "graph") gets one graph (nodes, edges, the
// catalogue cards of its features) and nothing else, so that Streamlit sends it to the browser
// once. The pinned panel (data.kind "pinned", pinned.js) draws the pinned subgraph from the
// chart's graph and brings the chart the view state from the URL. Hover, select, walk, pin,
// box-select, group (G), the pruning threshold, the edge-weight filter and hiding error nodes all
// happen here; the state goes back to Python (setStateValue "view") only after the user changed
// it, debounced, so that Python can keep it in the URL.
import { select } from "d3-selection";
import { drag } from "d3-drag";
import { layoutGraph, textWidth } from "./layout.js";
import { adjacency, columnsOf } from "./graph.js";
import { cardHtml } from "./card.js";
import { drawEdges, drawNodes, shapePath } from "./draw.js";
import { PinnedPanel } from "./pinned.js";
import { CircuitView } from "./circuit.js";

const instances = new WeakMap();
const SEND_DELAY_MS = 350;
// Charts by name, the last view state the URL brought for each, and the pinned panels: shared by
// the instances in the page.
const registry = (globalThis.__circuitmapGraphView ||= {
  views: new Map(),
  states: new Map(),
  panels: new Set(),
});

export default function mount(component) {
  if (!component.data) return undefined;
  const kind = component.data.kind;
  if (kind === "pinned") return mountPinned(component);
  return mountView(component, kind === "circuit" ? CircuitView : GraphView);
}

// One view per element; the same data version again only takes the new callback.
function mountView({ data, parentElement, setStateValue }, View) {
  let view = instances.get(parentElement);
  if (view && view.version === data.version) {
    view.setStateValue = setStateValue;
    return undefined;
  }
  if (view) view.destroy();
  view = new View(parentElement, data, setStateValue);
  instances.set(parentElement, view);
  return () => {
    view.destroy();
    instances.delete(parentElement);
  };
}

function mountPinned({ data, parentElement }) {
  let panel = instances.get(parentElement);
  const created = !panel;
  if (created) {
    panel = new PinnedPanel(parentElement, data.height);
    instances.set(parentElement, panel);
    registry.panels.add(panel);
  }
  panel.viewName = data.view;
  registry.states.set(data.view, data.state);
  const view = registry.views.get(data.view);
  if (view) view.adopt(data.state);
  panel.attach(view || null);
  if (!created) return undefined;
  return () => {
    panel.destroy();
    registry.panels.delete(panel);
    instances.delete(parentElement);
  };
}

class GraphView {
  constructor(parent, data, setStateValue) {
    this.parent = parent;
    this.version = data.version;
    this.name = data.name || "";
    this.setStateValue = setStateValue;
    this.panels = new Set();
    this.pinnedPositions = new Map(); // where pinned nodes were dragged (fractions of the panel)
    this.graph = columnsOf(data);
    this.adj = adjacency(this.graph);
    this.cards = new Map((data.cards || []).map((c) => [c.feature_uid, c]));
    // the URL's state, when the pinned panel brought it first
    this.state = normalState(registry.states.get(this.name));
    this.sentState = JSON.stringify(this.state);
    this.minShare = data.min_share || 0;
    this.hideErrors = !!data.hide_errors;
    this.hovered = -1;
    this.build();
    this.render();
    registry.views.set(this.name, this);
    for (const panel of registry.panels) if (panel.viewName === this.name) panel.attach(this);
  }

  // ---- DOM --------------------------------------------------------------------------------

  build() {
    const root = document.createElement("div");
    root.className = "cm-gv";
    root.tabIndex = 0;
    root.innerHTML = `
      <div class="cm-bar">
        <label title="Keep the most influential feature and error nodes that together hold this share of the graph's influence; tokens and logits always stay">
          threshold <input type="range" class="cm-thr" min="0.01" max="1" step="0.01">
          <span class="cm-thr-v"></span></label>
        <label title="Draw only edges carrying at least this share of their target's input">
          min edge share <input type="range" class="cm-share" min="0" max="0.5" step="0.005">
          <span class="cm-share-v"></span></label>
        <label><input type="checkbox" class="cm-hide-err"> hide error nodes</label>
        <span class="cm-count"></span>
        <span class="cm-help">click: select · shift+click or drag a box: pin · G: group pinned · Esc: clear</span>
      </div>
      <div class="cm-canvas"><svg class="cm-svg"><g class="cm-plot">
        <g class="cm-grid"></g><rect class="cm-box-area"></rect><g class="cm-edges"></g><g class="cm-nodes"></g><g class="cm-labels"></g>
        <rect class="cm-box" display="none"></rect>
      </g><g class="cm-axis"></g></svg>
      <div class="cm-card" hidden></div></div>`;
    this.parent.appendChild(root);
    this.root = root;
    this.svg = select(root.querySelector(".cm-svg"));
    this.card = root.querySelector(".cm-card");
    const thr = root.querySelector(".cm-thr");
    thr.value = this.state.threshold;
    thr.addEventListener("input", () => {
      this.state.threshold = Number(thr.value);
      this.render();
    });
    thr.addEventListener("change", () => this.send());
    const share = root.querySelector(".cm-share");
    share.value = this.minShare;
    share.addEventListener("input", () => {
      this.minShare = Number(share.value);
      this.renderMarks();
    });
    const hide = root.querySelector(".cm-hide-err");
    hide.checked = this.hideErrors;
    hide.addEventListener("change", () => {
      this.hideErrors = hide.checked;
      this.render();
    });
    root.addEventListener("keydown", (event) => this.onKey(event));
    // Box-select: a rectangle dragged over empty space (an area under the nodes) pins the nodes
    // inside it.
    const box = select(root.querySelector(".cm-box"));
    const corners = (event) => {
      const { x, y } = event.subject;
      return [Math.min(x, event.x), Math.min(y, event.y), Math.abs(event.x - x), Math.abs(event.y - y)];
    };
    select(root.querySelector(".cm-box-area")).call(
      drag()
        .on("start", () => root.focus({ preventScroll: true }))
        .on("drag", (event) => {
          const [x, y, w, h] = corners(event);
          box.attr("x", x).attr("y", y).attr("width", w).attr("height", h).attr("display", null);
        })
        .on("end", (event) => {
          box.attr("display", "none");
          const [x, y, w, h] = corners(event);
          if (w > 2 || h > 2) this.pinInside(x, y, x + w, y + h);
        }),
    );
    this.resizer = new ResizeObserver(() => {
      // not again for the same size (the height follows the chart's place in the window)
      if (root.clientWidth !== this.svgWidth || this.maxHeight() !== this.drawnHeight) this.render();
    });
    this.resizer.observe(root);
  }

  destroy() {
    if (registry.views.get(this.name) === this) registry.views.delete(this.name);
    for (const panel of [...this.panels]) panel.attach(null);
    this.resizer.disconnect();
    clearTimeout(this.timer);
    this.root.remove();
  }

  // ---- state ------------------------------------------------------------------------------

  adopt(incoming) {
    // Python re-sends the URL's state after each change it stored; a newer local change wins.
    if (!incoming) return;
    const next = normalState(incoming);
    const text = JSON.stringify(next);
    if (text === this.sentState || this.timer) return;
    this.state = next;
    this.sentState = text;
    this.root.querySelector(".cm-thr").value = next.threshold;
    this.render();
  }

  send() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const text = JSON.stringify(this.state);
      if (text === this.sentState) return;
      this.sentState = text;
      this.setStateValue("view", JSON.parse(text));
    }, SEND_DELAY_MS);
  }

  change(mutate) {
    mutate(this.state);
    this.renderMarks();
    this.send();
  }

  select(id) {
    this.change((s) => {
      s.selected = s.selected === id ? "" : id;
    });
  }

  togglePin(id) {
    this.change((s) => {
      const i = s.pinned.indexOf(id);
      if (i < 0) s.pinned.push(id);
      else {
        s.pinned.splice(i, 1);
        for (const name of Object.keys(s.groups)) {
          s.groups[name] = s.groups[name].filter((m) => m !== id);
          if (!s.groups[name].length) delete s.groups[name];
        }
      }
    });
  }

  pinInside(x0, y0, x1, y1) {
    const g = this.graph;
    const inside = [];
    for (let i = 0; i < g.n; i += 1) {
      const x = this.pos.x[i];
      const y = this.pos.y[i];
      if (this.keep[i] && x >= x0 && x <= x1 && y >= y0 && y <= y1) inside.push(g.id[i]);
    }
    const fresh = inside.filter((id) => !this.state.pinned.includes(id));
    if (!fresh.length) return;
    this.change((s) => {
      s.pinned.push(...fresh);
    });
  }

  groupPinned() {
    const grouped = new Set(Object.values(this.state.groups).flat());
    const members = this.state.pinned.filter((p) => !grouped.has(p));
    if (!members.length) return;
    let n = Object.keys(this.state.groups).length + 1;
    while (this.state.groups[`group ${n}`]) n += 1;
    this.change((s) => {
      s.groups[`group ${n}`] = members;
    });
  }

  onKey(event) {
    if (event.target.tagName === "INPUT") return;
    if (event.key === "g" || event.key === "G") {
      this.groupPinned();
      event.preventDefault();
    } else if (event.key === "Escape") {
      this.change((s) => {
        s.selected = "";
      });
    } else if ((event.key === "p" || event.key === "P") && this.hovered >= 0) {
      this.togglePin(this.graph.id[this.hovered]);
    }
  }

  // ---- drawing ----------------------------------------------------------------------------

  visible() {
    const g = this.graph;
    const keep = new Uint8Array(g.n);
    const marked = new Set([this.state.selected, ...this.state.pinned]);
    for (let i = 0; i < g.n; i += 1) {
      const kind = g.kind[i];
      if (kind === "token" || kind === "logit") keep[i] = 1;
      else if (kind === "error" && this.hideErrors) keep[i] = marked.has(g.id[i]) ? 1 : 0;
      else keep[i] = Number.isNaN(g.influence[i]) || g.influence[i] <= this.state.threshold ? 1 : 0;
    }
    return keep;
  }

  render() {
    const width = Math.max(480, this.root.clientWidth || 900);
    this.svgWidth = width;
    this.keep = this.visible();
    this.drawnHeight = this.maxHeight();
    this.pos = layoutGraph(this.graph, this.keep, width, this.drawnHeight);
    const { height } = this.pos;
    this.svg.attr("width", width).attr("height", height).attr("viewBox", `0 0 ${width} ${height}`);
    const shown = this.keep.reduce((a, b) => a + b, 0);
    this.root.querySelector(".cm-thr-v").textContent = this.state.threshold.toFixed(2);
    this.root.querySelector(".cm-share-v").textContent = `${Math.round(this.minShare * 100)}%`;
    this.root.querySelector(".cm-count").textContent =
      `${shown.toLocaleString()} of ${this.graph.n.toLocaleString()} nodes shown`;
    this.drawAxes();
    this.svg.select(".cm-box-area").attr("x", 0).attr("y", 0).attr("width", width).attr("height", height);
    drawNodes(this);
    this.renderMarks();
  }

  maxHeight() {
    // Fit the window below the chart's top (above the fold), within sensible bounds.
    const top = this.root.getBoundingClientRect().top + window.scrollY;
    const room = window.innerHeight - Math.min(top, window.innerHeight * 0.45) - 60;
    return Math.max(380, Math.min(900, room));
  }

  drawAxes() {
    const { bands, columns, height } = this.pos;
    const axis = this.svg.select(".cm-axis");
    axis.selectAll("*").remove();
    const grid = this.svg.select(".cm-grid");
    grid.selectAll("*").remove();
    for (const band of bands) {
      axis.append("text").attr("class", "cm-band").attr("x", 4).attr("y", band.y + 4).text(band.label);
      grid.append("line").attr("class", "cm-gridline")
        .attr("x1", this.pos.left).attr("x2", this.pos.right).attr("y1", band.y).attr("y2", band.y);
    }
    const { rotate, bottom } = this.pos;
    for (const col of columns) {
      const y = height - bottom + 16;
      const label = axis.append("text").attr("class", "cm-tok").attr("x", col.center).attr("y", y)
        .attr("text-anchor", rotate ? "end" : "middle").text(col.text);
      if (rotate) label.attr("transform", `rotate(-40 ${col.center} ${y})`);
      label.append("title").text(col.token);
      grid.append("line").attr("class", "cm-colline")
        .attr("x1", col.left).attr("x2", col.left).attr("y1", this.pos.top).attr("y2", height - bottom);
    }
  }

  renderMarks() {
    const g = this.graph;
    const { selected, pinned, groups } = this.state;
    const sel = g.index.has(selected) ? g.index.get(selected) : -1;
    const pinnedIdx = pinned.filter((p) => g.index.has(p)).map((p) => g.index.get(p));
    const groupOf = new Map();
    Object.values(groups).forEach((members, gi) => members.forEach((m) => groupOf.set(m, gi)));
    const edges = drawEdges(this, sel, pinnedIdx);
    const neighbours = new Set(edges.flatMap((e) => [e.s, e.t]));
    this.root.querySelectorAll(".cm-node").forEach((el) => {
      const i = Number(el.dataset.i);
      const id = g.id[i];
      el.classList.toggle("selected", i === sel);
      el.classList.toggle("pinned", pinned.includes(id));
      el.classList.toggle("faded", sel >= 0 && i !== sel && !neighbours.has(i) && !pinned.includes(id));
      const gi = groupOf.get(id);
      el.dataset.group = gi === undefined ? "" : String(gi % 7);
    });
    this.drawLabels(pinnedIdx, groupOf);
    this.root.dataset.selected = selected;
    this.root.dataset.pinned = pinned.join(",");
    this.root.dataset.groups = JSON.stringify(groups);
    this.root.dataset.edges = String(edges.length);
    for (const panel of this.panels) panel.render();
  }

  drawLabels(pinnedIdx, groupOf) {
    // Pinned nodes carry their labels, so the subgraph reads without hovering.
    const layer = this.svg.select(".cm-labels");
    layer.selectAll("*").remove();
    const g = this.graph;
    for (const i of pinnedIdx) {
      if (!this.keep[i] || g.kind[i] === "logit") continue;
      const gi = groupOf.get(g.id[i]);
      const name = gi === undefined ? "" : `[${Object.keys(this.state.groups)[gi]}] `;
      const text = name + (g.label[i] || g.caption[i]);
      // right of the node, or left of it where the label would run past the chart's edge
      const fits = this.pos.x[i] + 7 + textWidth(text) <= this.svgWidth;
      layer.append("text").attr("class", "cm-pin-label")
        .attr("x", fits ? this.pos.x[i] + 7 : this.pos.x[i] - 7)
        .attr("text-anchor", fits ? "start" : "end")
        .attr("y", this.pos.y[i] - 6)
        .text(text);
    }
  }

  // ---- hover card -------------------------------------------------------------------------

  showCard(i, event) {
    if (this.hovered !== i || this.card.hidden) {
      this.hovered = i;
      this.card.innerHTML = cardHtml(this.graph, i, this.cards, this.adj);
      this.card.hidden = false;
    }
    const box = this.root.querySelector(".cm-canvas").getBoundingClientRect();
    const x = event.clientX - box.left;
    const y = event.clientY - box.top;
    const w = this.card.offsetWidth;
    const h = this.card.offsetHeight;
    this.card.style.left = `${x + 14 + w > box.width ? Math.max(0, x - w - 14) : x + 14}px`;
    this.card.style.top = `${Math.max(0, Math.min(y - 10, box.height - h))}px`;
    this.root.dataset.hovered = this.graph.id[i];
  }

  hideCard() {
    this.hovered = -1;
    this.card.hidden = true;
    this.root.dataset.hovered = "";
  }
}

function normalState(state) {
  const s = state || {};
  return {
    selected: s.selected || "",
    pinned: [...(s.pinned || [])],
    groups: Object.fromEntries(Object.entries(s.groups || {}).map(([k, v]) => [k, [...v]])),
    threshold: Number(s.threshold) > 0 ? Number(s.threshold) : 1,
  };
}

export { shapePath };
