// The dashboard's graph view, drawn and driven in the browser (a Streamlit Components v2 module).
//
// Python sends one graph (nodes, edges, the catalogue cards of its features) and the view state
// from the URL. Hover, select, walk, pin, group (G), the pruning threshold, the edge-weight filter
// and hiding error nodes all happen here; the state goes back to Python (setStateValue "view")
// only after the user changed it, debounced, so that Python can keep it in the URL.
import { select } from "d3-selection";
import { layoutGraph, textWidth } from "./layout.js";
import { adjacency, columnsOf } from "./graph.js";
import { cardHtml } from "./card.js";
import { drawEdges, drawNodes, shapePath } from "./draw.js";

const instances = new WeakMap();
const SEND_DELAY_MS = 350;

export default function mount(component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return undefined;
  let view = instances.get(parentElement);
  if (view && view.version === data.version) {
    view.setStateValue = setStateValue;
    view.adopt(data.state);
    return undefined;
  }
  if (view) view.destroy();
  view = new GraphView(parentElement, data, setStateValue);
  instances.set(parentElement, view);
  return () => {
    view.destroy();
    instances.delete(parentElement);
  };
}

class GraphView {
  constructor(parent, data, setStateValue) {
    this.parent = parent;
    this.version = data.version;
    this.setStateValue = setStateValue;
    this.graph = columnsOf(data);
    this.adj = adjacency(this.graph);
    this.cards = new Map((data.cards || []).map((c) => [c.feature_uid, c]));
    this.state = normalState(data.state);
    this.sentState = JSON.stringify(this.state);
    this.minShare = data.min_share || 0;
    this.hideErrors = !!data.hide_errors;
    this.hovered = -1;
    this.build();
    this.render();
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
        <span class="cm-help">click: select · shift+click: pin · G: group pinned · Esc: clear</span>
      </div>
      <div class="cm-canvas"><svg class="cm-svg"><g class="cm-plot">
        <g class="cm-grid"></g><g class="cm-edges"></g><g class="cm-nodes"></g><g class="cm-labels"></g>
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
    this.resizer = new ResizeObserver(() => this.render());
    this.resizer.observe(root);
  }

  destroy() {
    this.resizer.disconnect();
    clearTimeout(this.timer);
    this.root.remove();
  }

  // ---- state ------------------------------------------------------------------------------

  adopt(incoming) {
    // Python re-sends the URL's state after each change it stored; a newer local change wins.
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
    this.pos = layoutGraph(this.graph, this.keep, width, this.maxHeight());
    const { height } = this.pos;
    this.svg.attr("width", width).attr("height", height).attr("viewBox", `0 0 ${width} ${height}`);
    const shown = this.keep.reduce((a, b) => a + b, 0);
    this.root.querySelector(".cm-thr-v").textContent = this.state.threshold.toFixed(2);
    this.root.querySelector(".cm-share-v").textContent = `${Math.round(this.minShare * 100)}%`;
    this.root.querySelector(".cm-count").textContent =
      `${shown.toLocaleString()} of ${this.graph.n.toLocaleString()} nodes shown`;
    this.drawAxes();
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
