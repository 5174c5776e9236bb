// SVG drawing of nodes and edges, in the Neuronpedia visual language: squares for tokens and
// logits, diamonds for errors, circles for features; edges only for the selected node and between
// pinned nodes, width ~ sqrt(share), purple (negative) to green (positive).
import { edgesOf } from "./graph.js";

const BASE_SIZE = { token: 10, logit: 10, error: 7, feature: 6, supernode: 14 };

export function shapePath(kind, r) {
  if (kind === "token" || kind === "logit") return `M${-r},${-r}h${2 * r}v${2 * r}h${-2 * r}Z`;
  if (kind === "error") return `M0,${-r * 1.25}L${r * 1.25},0L0,${r * 1.25}L${-r * 1.25},0Z`;
  if (kind === "supernode") {
    const pts = [...Array(6).keys()].map((k) => {
      const a = (Math.PI / 3) * k;
      return `${(r * Math.cos(a)).toFixed(2)},${(r * Math.sin(a)).toFixed(2)}`;
    });
    return `M${pts.join("L")}Z`;
  }
  return `M${-r},0a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0`;
}

function radius(graph, i, gap) {
  const kind = graph.kind[i];
  let size = BASE_SIZE[kind] || 6;
  if (kind === "feature" || kind === "error") {
    const infl = graph.influence[i];
    size += Number.isNaN(infl) ? 0 : 5 * (1 - Math.min(1, Math.max(0, infl)));
    size = Math.min(size, gap * 0.9); // never wider than the gap to the next node
  } else if (kind === "logit") {
    size += 10 * Math.sqrt(graph.probability[i] || 0);
  }
  return Math.max(2.2, size / 2);
}

export function drawNodes(view) {
  const { graph, pos, keep } = view;
  const layer = view.svg.select(".cm-nodes");
  const shown = [];
  for (let i = 0; i < graph.n; i += 1) if (keep[i]) shown.push(i);
  layer
    .selectAll("path.cm-node")
    .data(shown, (i) => i)
    .join("path")
    .attr("class", (i) => `cm-node k-${graph.kind[i]}`)
    .attr("data-i", (i) => i)
    .attr("data-id", (i) => graph.id[i])
    .attr("d", (i) => shapePath(graph.kind[i], radius(graph, i, pos.gap)))
    .attr("transform", (i) => `translate(${pos.x[i].toFixed(1)},${pos.y[i].toFixed(1)})`)
    .on("mouseenter", (event, i) => view.showCard(i, event))
    .on("mousemove", (event, i) => view.showCard(i, event))
    .on("mouseleave", () => view.hideCard())
    .on("click", (event, i) => {
      view.root.focus({ preventScroll: true });
      if (event.shiftKey || event.metaKey || event.ctrlKey) view.togglePin(graph.id[i]);
      else view.select(graph.id[i]);
    });
  const labels = view.svg.select(".cm-axis");
  for (const l of pos.logitLabels) {
    labels.append("line").attr("class", "cm-leader")
      .attr("x1", l.x).attr("x2", pos.x[l.i]).attr("y1", l.y + 3).attr("y2", pos.y[l.i] - 6);
    labels.append("text").attr("class", "cm-logit").attr("x", l.x).attr("y", l.y)
      .attr("text-anchor", "middle").text(l.text);
  }
}

function edgePath(x1, y1, x2, y2) {
  const dy = (y2 - y1) * 0.45;
  return `M${x1.toFixed(1)},${y1.toFixed(1)}C${x1.toFixed(1)},${(y1 + dy).toFixed(1)} ${x2.toFixed(1)},${(y2 - dy).toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`;
}

export function drawEdges(view, sel, pinnedIdx) {
  const { graph, pos, keep, adj } = view;
  const chosen = new Set();
  if (sel >= 0) for (const e of edgesOf(adj, sel)) chosen.add(e);
  if (pinnedIdx.length > 1) {
    const pinned = new Set(pinnedIdx);
    for (const p of pinnedIdx) {
      for (let k = adj.outputs.start[p]; k < adj.outputs.start[p + 1]; k += 1) {
        const e = adj.outputs.edges[k];
        if (pinned.has(graph.target[e])) chosen.add(e);
      }
    }
  }
  const edges = [];
  for (const e of chosen) {
    const s = graph.source[e];
    const t = graph.target[e];
    if (!keep[s] || !keep[t] || graph.share[e] < view.minShare) continue;
    edges.push({ e, s, t, w: graph.weight[e], share: graph.share[e] });
  }
  edges.sort((a, b) => a.share - b.share); // strongest on top
  view.svg
    .select(".cm-edges")
    .selectAll("path")
    .data(edges, (d) => d.e)
    .join("path")
    .attr("class", (d) => (d.w >= 0 ? "cm-edge pos" : "cm-edge neg"))
    .attr("d", (d) => edgePath(pos.x[d.s], pos.y[d.s], pos.x[d.t], pos.y[d.t]))
    .attr("stroke-width", (d) => (0.6 + 6 * Math.sqrt(d.share)).toFixed(2))
    .attr("stroke-opacity", (d) => (0.35 + 0.6 * Math.sqrt(d.share)).toFixed(2));
  return edges;
}
