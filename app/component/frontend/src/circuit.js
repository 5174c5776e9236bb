// The corpus circuit of a tag (data.kind "circuit"): its token classes, features, supernodes and
// answers drawn like a graph, one column per layer from the tokens (left) to the answers (right).
// Node size and edge width show how many of the tag's graphs support them; edges are green when
// their mean weight is positive, purple when negative. Hover a node for its label and support;
// click one to open its instances (state "node" goes to Python); drag nodes to arrange them.
import { select } from "d3-selection";
import { shapePath } from "./draw.js";
import { joinNodes, nodeDrag, placeLabel, truncate } from "./movable.js";

const MARGIN = { left: 20, right: 170, top: 24, bottom: 20 };
const MAX_LABEL = 28;

function layoutCircuit(nodes, width, height) {
  const layers = [...new Set(nodes.layer)].sort((a, b) => a - b);
  const column = new Map(layers.map((l, k) => [l, k]));
  const innerW = Math.max(60, width - MARGIN.left - MARGIN.right);
  const innerH = Math.max(60, height - MARGIN.top - MARGIN.bottom);
  const colW = innerW / Math.max(1, layers.length - 1 || 1);
  const byColumn = new Map();
  nodes.id.forEach((_, i) => {
    const c = column.get(nodes.layer[i]);
    if (!byColumn.has(c)) byColumn.set(c, []);
    byColumn.get(c).push(i);
  });
  const x = new Float64Array(nodes.id.length);
  const y = new Float64Array(nodes.id.length);
  for (const [c, list] of byColumn) {
    list.sort((a, b) => nodes.support[b] - nodes.support[a]);
    list.forEach((i, k) => {
      x[i] = MARGIN.left + (layers.length > 1 ? c * colW : innerW / 2);
      y[i] = MARGIN.top + (innerH * (k + 0.5)) / list.length;
    });
  }
  return { x, y };
}

export class CircuitView {
  constructor(parent, data, setStateValue) {
    this.setStateValue = setStateValue;
    this.version = data.version;
    this.nodes = data.nodes;
    this.edges = data.edges;
    this.height = data.height || 560;
    this.selected = "";
    this.moved = new Map(); // node id -> [x, y] as fractions, where it was dragged
    const root = document.createElement("div");
    root.className = "cm-cc";
    root.innerHTML = `<div class="cm-pv-hint">node size and edge width: graphs that support them ·
      click a node for its instances · drag to arrange</div>
      <svg class="cm-pv-svg"><g class="cm-cc-edges"></g><g class="cm-cc-nodes"></g></svg>`;
    parent.appendChild(root);
    this.root = root;
    this.svg = select(root.querySelector("svg"));
    this.resizer = new ResizeObserver(() => this.render());
    this.resizer.observe(root);
    this.render();
  }

  destroy() {
    this.resizer.disconnect();
    this.root.remove();
  }

  render() {
    const width = Math.max(360, this.root.clientWidth || 900);
    const height = this.height;
    this.width = width;
    this.svg.attr("width", width).attr("height", height).attr("viewBox", `0 0 ${width} ${height}`);
    const n = this.nodes;
    const placed = layoutCircuit(n, width, height);
    const maxSupport = Math.max(1, ...n.support);
    this.units = n.id.map((id, i) => {
      const fixed = this.moved.get(id);
      return {
        id,
        i,
        kind: n.kind[i],
        label: n.label[i] || id,
        support: n.support[i],
        r: 3 + 11 * Math.sqrt(n.support[i] / maxSupport),
        x: fixed ? fixed[0] * width : placed.x[i],
        y: fixed ? fixed[1] * height : placed.y[i],
      };
    });
    const index = new Map(n.id.map((id, i) => [id, i]));
    const maxGraphs = Math.max(1, ...this.edges.n_graphs);
    this.links = [];
    this.edges.source.forEach((s, k) => {
      const a = index.get(s);
      const b = index.get(this.edges.target[k]);
      if (a === undefined || b === undefined) return;
      const w = this.edges.n_graphs[k];
      this.links.push({ a, b, k, width: 0.5 + 6 * (w / maxGraphs), neg: this.edges.mean_weight[k] < 0, w });
    });
    this.links.sort((p, q) => p.w - q.w);
    this.drawEdges();
    this.drawNodes(width, height);
    this.root.dataset.nodes = String(this.units.length);
    this.root.dataset.edges = String(this.links.length);
  }

  drawEdges() {
    const u = this.units;
    this.svg
      .select(".cm-cc-edges")
      .selectAll("path")
      .data(this.links, (d) => d.k)
      .join("path")
      .attr("class", (d) => (d.neg ? "cm-edge neg" : "cm-edge pos"))
      .attr("data-n", (d) => d.w)
      .attr("d", (d) => {
        const p = u[d.a];
        const q = u[d.b];
        const dx = (q.x - p.x) * 0.45;
        return `M${p.x.toFixed(1)},${p.y.toFixed(1)}C${(p.x + dx).toFixed(1)},${p.y.toFixed(1)} ${(q.x - dx).toFixed(1)},${q.y.toFixed(1)} ${q.x.toFixed(1)},${q.y.toFixed(1)}`;
      })
      .attr("stroke-width", (d) => d.width.toFixed(2))
      .attr("stroke-opacity", 0.55);
  }

  drawNodes(width, height) {
    const onMove = (d) => {
      this.moved.set(d.id, [d.x / width, d.y / height]);
      this.drawEdges();
    };
    const nodes = joinNodes(this.svg.select(".cm-cc-nodes"), this.units, (d) => d.id)
      .attr("data-support", (d) => d.support)
      .classed("selected", (d) => d.id === this.selected)
      .call(nodeDrag(width, height, onMove, (d) => this.open(d.id), (d) => d.r + 4));
    nodes
      .select("path")
      .attr("class", (d) => `k-${d.kind}`)
      .attr("d", (d) => shapePath(d.kind === "supernode" ? "supernode" : d.kind, d.r));
    nodes
      .select("text")
      .text((d) => truncate(d.label, MAX_LABEL))
      .call(placeLabel, width, (d) => d.r + 4);
    nodes.select("title").text((d) => `${d.label} (${d.kind})\nin ${d.support} graphs\n${d.id}`);
  }

  open(id) {
    this.selected = id;
    this.root.dataset.selected = id;
    this.svg.selectAll("g.cm-pnode").classed("selected", (d) => d.id === id);
    this.setStateValue("node", id);
  }
}
