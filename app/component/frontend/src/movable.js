// Labelled nodes that can be dragged with the mouse, shared by the pinned subgraph (pinned.js)
// and the corpus circuit (circuit.js): one <g class="cm-pnode"> per datum (with x and y) holding
// its shape, label and tooltip.
import { select } from "d3-selection";
import { drag } from "d3-drag";
import { textWidth } from "./layout.js";

// A press without a move is a click. The node is raised (drawn on top) only once it moves:
// moving it in the DOM on the press would cancel the click.
export function nodeDrag(width, height, onMove, onClick, gap = 10) {
  let moved = false;
  return drag()
    .on("start", () => {
      moved = false;
    })
    .on("drag", function dragged(event, d) {
      if (!moved) select(this).raise();
      moved = true;
      d.x = Math.max(4, Math.min(width - 4, event.x));
      d.y = Math.max(4, Math.min(height - 4, event.y));
      select(this).attr("transform", `translate(${d.x.toFixed(1)},${d.y.toFixed(1)})`);
      placeLabel(select(this).select("text"), width, gap);
      onMove(d);
    })
    .on("end", (event, d) => {
      if (!moved) onClick(d);
    });
}

export function joinNodes(layer, data, key) {
  return layer
    .selectAll("g.cm-pnode")
    .data(data, key)
    .join((enter) => {
      const g = enter.append("g").attr("class", "cm-pnode");
      g.append("path");
      g.append("text").attr("class", "cm-pin-label").attr("y", 4);
      g.append("title");
      return g;
    })
    .attr("data-id", key)
    .attr("transform", (d) => `translate(${d.x.toFixed(1)},${d.y.toFixed(1)})`);
}

export function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// A label sits right of its node, or left of it where it would run past the drawing's edge.
export function placeLabel(labels, width, gap) {
  labels.each(function place(d) {
    const text = this.textContent || "";
    const offset = typeof gap === "function" ? gap(d) : gap;
    const fits = d.x + offset + textWidth(text) <= width;
    select(this)
      .attr("x", fits ? offset : -offset)
      .attr("text-anchor", fits ? "start" : "end");
  });
}
