// The pinned subgraph: the chart's pinned nodes (a group drawn as one supernode) with their labels
// and the edges between them, laid out by token position (x) and layer (y, embeddings at the
// bottom), each node draggable with the mouse. It lives in its own component instance under the
// chart and draws from the chart's graph in the page, so a pin shows here at once; positions a
// node was dragged to are kept by the chart (for as long as the page lives).
import { select } from "d3-selection";
import { shapePath } from "./draw.js";
import { joinNodes, nodeDrag, placeLabel, truncate } from "./movable.js";

const MARGIN = { left: 16, right: 90, top: 24, bottom: 24 };
const MAX_LABEL = 30;

// The units drawn: one per pinned node, or one per group of pinned nodes.
export function pinnedUnits(graph, state) {
  const groupOf = new Map();
  Object.entries(state.groups).forEach(([name, members], gi) => {
    for (const m of members) groupOf.set(m, [name, gi]);
  });
  const units = new Map();
  for (const id of state.pinned) {
    if (!graph.index.has(id)) continue;
    const i = graph.index.get(id);
    const group = groupOf.get(id);
    const key = group ? `group:${group[0]}` : id;
    if (!units.has(key)) {
      units.set(key, {
        key,
        members: [],
        kind: group ? "supernode" : graph.kind[i],
        label: group ? group[0] : graph.label[i] || graph.caption[i],
        group: group ? group[1] % 7 : undefined,
      });
    }
    units.get(key).members.push(i);
  }
  return [...units.values()];
}

// Edges between units: weights summed over their members' edges, share = the summed shares
// (capped at 1) of the target unit's input.
export function unitEdges(graph, adj, units) {
  const unitOf = new Map();
  units.forEach((u, k) => u.members.forEach((i) => unitOf.set(i, k)));
  const sums = new Map();
  units.forEach((u, k) => {
    for (const i of u.members) {
      for (let p = adj.outputs.start[i]; p < adj.outputs.start[i + 1]; p += 1) {
        const e = adj.outputs.edges[p];
        const t = unitOf.get(graph.target[e]);
        if (t === undefined || t === k) continue;
        const key = `${k}>${t}`;
        const sum = sums.get(key) || { s: k, t, w: 0, share: 0 };
        sum.w += graph.weight[e];
        sum.share += graph.share[e];
        sums.set(key, sum);
      }
    }
  });
  return [...sums.values()].map((d) => ({ ...d, share: Math.min(1, d.share) }));
}

function bandOf(graph, i) {
  const kind = graph.kind[i];
  if (kind === "token") return 0;
  if (kind === "logit") return graph.nLayers + 1;
  return graph.layer[i] + 1;
}

// Columns: the distinct (mean) token positions of the units, in order; rows: their bands. Units
// sharing a cell sit side by side.
export function pinnedLayout(graph, units, width, height) {
  const at = units.map((u) => {
    const mean = (f) => u.members.reduce((a, i) => a + f(i), 0) / u.members.length;
    return { x: mean((i) => graph.position[i]), y: mean((i) => bandOf(graph, i)) };
  });
  const xs = [...new Set(at.map((p) => p.x))].sort((a, b) => a - b);
  const ys = [...new Set(at.map((p) => p.y))].sort((a, b) => a - b);
  const innerW = Math.max(40, width - MARGIN.left - MARGIN.right);
  const innerH = Math.max(40, height - MARGIN.top - MARGIN.bottom);
  const colW = innerW / Math.max(1, xs.length);
  const cells = new Map();
  at.forEach((p, k) => {
    const key = `${p.x}|${p.y}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(k);
  });
  const out = new Array(units.length);
  for (const list of cells.values()) {
    const p = at[list[0]];
    const cx = MARGIN.left + colW * (xs.indexOf(p.x) + 0.5);
    const row = ys.indexOf(p.y);
    const cy = ys.length > 1
      ? MARGIN.top + innerH * (1 - row / (ys.length - 1))
      : MARGIN.top + innerH / 2;
    // neighbouring columns alternate up and down a little, so that their labels do not meet
    const stagger = xs.length > 2 ? ((xs.indexOf(p.x) % 2) - 0.5) * 16 : 0;
    const step = Math.min(36, (colW * 0.8) / list.length);
    list.forEach((k, j) => {
      out[k] = { x: cx + (j - (list.length - 1) / 2) * step, y: cy + stagger + (j % 2) * 10 };
    });
  }
  return out;
}

export class PinnedPanel {
  constructor(parent, height) {
    this.parent = parent;
    this.height = height || 360;
    this.view = null;
    const root = document.createElement("div");
    root.className = "cm-pv";
    root.innerHTML = `<div class="cm-pv-hint"></div>
      <svg class="cm-pv-svg"><g class="cm-pv-edges"></g><g class="cm-pv-nodes"></g></svg>`;
    parent.appendChild(root);
    this.root = root;
    this.svg = select(root.querySelector(".cm-pv-svg"));
    this.hint = root.querySelector(".cm-pv-hint");
    this.resizer = new ResizeObserver(() => this.render());
    this.resizer.observe(root);
    this.render();
  }

  attach(view) {
    if (this.view === view) return;
    if (this.view) this.view.panels.delete(this);
    this.view = view;
    if (view) view.panels.add(this);
    this.render();
  }

  destroy() {
    this.attach(null);
    this.resizer.disconnect();
    this.root.remove();
  }

  render() {
    const view = this.view;
    const width = Math.max(240, this.root.clientWidth || 480);
    const units = view ? pinnedUnits(view.graph, view.state) : [];
    this.root.dataset.units = String(units.length);
    if (!view) {
      this.hint.textContent = "The pinned subgraph is drawn from the chart above.";
    } else if (!units.length) {
      this.hint.textContent =
        "Pin nodes (shift+click, or drag a box over empty space in the chart) to build a subgraph.";
    } else {
      this.hint.textContent = "Drag nodes to arrange them; click one to select it.";
    }
    const height = units.length ? this.height : 0;
    this.svg.attr("width", width).attr("height", height).attr("viewBox", `0 0 ${width} ${height}`);
    if (!units.length) {
      this.svg.selectAll(".cm-pv-edges > *, .cm-pv-nodes > *").remove();
      this.root.dataset.edges = "0";
      return;
    }
    const placed = pinnedLayout(view.graph, units, width, height);
    const moved = view.pinnedPositions;
    units.forEach((u, k) => {
      const fixed = moved.get(u.key);
      u.x = fixed ? fixed[0] * width : placed[k].x;
      u.y = fixed ? fixed[1] * height : placed[k].y;
    });
    const edges = unitEdges(view.graph, view.adj, units);
    this.units = units;
    this.edges = edges;
    this.width = width;
    this.drawEdges();
    this.drawNodes(width, height);
    this.root.dataset.edges = String(edges.length);
  }

  drawEdges() {
    const units = this.units;
    this.svg
      .select(".cm-pv-edges")
      .selectAll("path")
      .data(this.edges, (d) => `${units[d.s].key}>${units[d.t].key}`)
      .join("path")
      .attr("class", (d) => (d.w >= 0 ? "cm-edge pos" : "cm-edge neg"))
      .attr("d", (d) => {
        const a = units[d.s];
        const b = units[d.t];
        const dy = (b.y - a.y) * 0.4;
        return `M${a.x.toFixed(1)},${a.y.toFixed(1)}C${a.x.toFixed(1)},${(a.y + dy).toFixed(1)} ${b.x.toFixed(1)},${(b.y - dy).toFixed(1)} ${b.x.toFixed(1)},${b.y.toFixed(1)}`;
      })
      .attr("stroke-width", (d) => (0.8 + 6 * Math.sqrt(d.share)).toFixed(2))
      .attr("stroke-opacity", (d) => (0.35 + 0.6 * Math.sqrt(d.share)).toFixed(2));
  }

  drawNodes(width, height) {
    const view = this.view;
    const selected = view.state.selected;
    const onMove = (d) => {
      view.pinnedPositions.set(d.key, [d.x / width, d.y / height]);
      this.drawEdges();
    };
    const onClick = (d) => view.select(view.graph.id[d.members[0]]);
    const nodes = joinNodes(this.svg.select(".cm-pv-nodes"), this.units, (u) => u.key)
      .attr("data-group", (u) => (u.group === undefined ? "" : String(u.group)))
      .classed("selected", (u) => u.members.some((i) => view.graph.id[i] === selected))
      .call(nodeDrag(width, height, onMove, onClick));
    nodes
      .select("path")
      .attr("class", (u) => `k-${u.kind}`)
      .attr("d", (u) => shapePath(u.kind, u.kind === "supernode" ? 9 : 6));
    nodes
      .select("text")
      .text((u) => truncate(u.kind === "supernode" ? `${u.label} (${u.members.length})` : u.label, MAX_LABEL))
      .call(placeLabel, width, 10);
    nodes.select("title").text((u) => u.members.map((i) => view.graph.caption[i]).join("\n"));
  }
}
