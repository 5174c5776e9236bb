"""The Plotly figure of one attribution graph, in the Neuronpedia visual language.

Squares for tokens and logits, diamonds for errors, circles for features; edges only for the
selected node and between pinned nodes, width ~ sqrt(share), purple (negative) to green
(positive); the selected node magenta. One scatter trace holds every node, so a click maps to a
node id through `customdata`."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from app.graphview.connections import node_caption
from app.graphview.layout import band_labels

SELECTED_COLOR = "#ff00ff"
KIND_STYLE = {  # symbol, fill colour, base size
    "token": ("square", "#475569", 13),
    "logit": ("square", "#f59e0b", 12),
    "error": ("diamond", "#a8a29e", 8),
    "feature": ("circle", "#7fb2dd", 7),
    "supernode": ("hexagon", "#0f766e", 18),
}
GROUP_COLORS = ["#e6550d", "#31a354", "#756bb1", "#de2d26", "#3182bd", "#c51b8a", "#8c6d31"]
EDGE_LEVELS = 5  # magnitude bins per sign: one line trace per (sign, bin)
NODES_TRACE_NAME = "nodes"


@dataclass
class ViewMarks:
    """What the user has marked in the view."""

    selected: str = ""
    pinned: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)


def edges_to_draw(shared_edges: pd.DataFrame, marks: ViewMarks) -> pd.DataFrame:
    """Edges touching the selected node, plus edges between pinned nodes."""
    pinned = set(marks.pinned)
    mask = shared_edges["source"].isin(pinned) & shared_edges["target"].isin(pinned)
    if marks.selected:
        mask |= (shared_edges["source"] == marks.selected) | (
            shared_edges["target"] == marks.selected
        )
    return shared_edges[mask]


def edge_color(sign: float, level: float) -> str:
    """PRGn colour: purple for negative, green for positive, deeper for stronger (level in 0..1)."""
    return sample_colorscale("PRGn", [0.5 + sign * (0.2 + 0.3 * level)])[0]


def _edge_traces(placed: pd.DataFrame, edges: pd.DataFrame) -> list[go.Scatter]:
    if edges.empty:
        return []
    xy = placed.set_index("node_id")[["x", "y"]]
    edges = edges[edges["source"].isin(xy.index) & edges["target"].isin(xy.index)]
    strength = np.sqrt(edges["share"].clip(0, 1).to_numpy())
    level = np.minimum((strength * EDGE_LEVELS).astype(int), EDGE_LEVELS - 1)
    sign = np.where(edges["weight"].to_numpy() >= 0, 1, -1)
    src = xy.reindex(edges["source"]).to_numpy()
    dst = xy.reindex(edges["target"]).to_numpy()
    traces = []
    for s in (-1, 1):
        for lv in range(EDGE_LEVELS):
            sel = np.flatnonzero((sign == s) & (level == lv))
            if not len(sel):
                continue
            xs = np.column_stack([src[sel, 0], dst[sel, 0], np.full(len(sel), np.nan)]).ravel()
            ys = np.column_stack([src[sel, 1], dst[sel, 1], np.full(len(sel), np.nan)]).ravel()
            frac = (lv + 0.5) / EDGE_LEVELS
            traces.append(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"width": 0.6 + 7 * frac, "color": edge_color(s, frac)},
                    opacity=0.85,
                    hoverinfo="skip",
                    showlegend=False,
                    name=f"edges {'+' if s > 0 else '-'}{lv}",
                )
            )
    return traces


def _fmt(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.3g}"


def _hover(row: dict) -> str:
    lines = [f"<b>{html.escape(node_caption(row))}</b>"]
    if row["kind"] == "feature" and row.get("feature_uid"):
        lines.append(html.escape(str(row["feature_uid"])))
    token = html.escape(row["token"])
    lines.append(f"{row['kind']} · layer {row['layer']} · pos {row['position']} '{token}'")
    if row["kind"] == "logit":
        lines.append(f"p = {_fmt(row['probability'])}")
    else:
        lines.append(f"act {_fmt(row['activation'])} · infl {_fmt(row['influence'])}")
    return "<br>".join(lines)


def _node_trace(placed: pd.DataFrame, marks: ViewMarks, neighbours: set[str]) -> go.Scatter:
    records = placed.to_dict("records")
    group_of = {
        nid: GROUP_COLORS[i % len(GROUP_COLORS)]
        for i, members in enumerate(marks.groups.values())
        for nid in members
    }
    pinned = set(marks.pinned)
    symbols, colors, sizes, widths, line_colors, opacity, texts = [], [], [], [], [], [], []
    for r in records:
        symbol, color, size = KIND_STYLE.get(r["kind"], KIND_STYLE["feature"])
        if r["kind"] in ("feature", "error") and not pd.isna(r["influence"]):
            size = size + 8 * (1.0 - min(max(r["influence"], 0.0), 1.0))
        if r["kind"] == "logit" and not pd.isna(r["probability"]):
            size = size + 14 * np.sqrt(r["probability"])
        color = group_of.get(r["node_id"], color)
        nid = r["node_id"]
        is_sel = nid == marks.selected
        symbols.append(symbol)
        colors.append(SELECTED_COLOR if is_sel else color)
        sizes.append(size * 1.5 if is_sel else size)
        widths.append(3 if nid in pinned else (2 if is_sel else 0.6))
        line_colors.append("#111827" if (nid in pinned or is_sel) else "#ffffff")
        faded = marks.selected and not (is_sel or nid in neighbours or nid in pinned)
        opacity.append(0.3 if faded else 1.0)
        texts.append(
            f"{r['token']} {r['probability']:.0%}"
            if r["kind"] == "logit" and not pd.isna(r["probability"])
            else ""
        )
    return go.Scatter(
        x=placed["x"],
        y=placed["y"],
        mode="markers+text",
        name=NODES_TRACE_NAME,
        customdata=placed["node_id"],
        hovertext=[_hover(r) for r in records],
        hoverinfo="text",
        text=texts,
        textposition="top center",
        textfont={"size": 11, "color": "#92400e"},
        marker={
            "symbol": symbols,
            "color": colors,
            "size": sizes,
            "opacity": opacity,
            "line": {"width": widths, "color": line_colors},
        },
        showlegend=False,
    )


def graph_figure(
    placed: pd.DataFrame,
    shared_edges: pd.DataFrame,
    n_layers: int,
    tokens: list[str],
    marks: ViewMarks,
    height: int | None = None,
) -> go.Figure:
    """Figure of positioned nodes (`layout.layout` output) and the edges the marks call for."""
    drawn = edges_to_draw(shared_edges, marks)
    neighbours = set()
    if marks.selected:
        touching = drawn[(drawn["source"] == marks.selected) | (drawn["target"] == marks.selected)]
        neighbours = set(touching["source"]) | set(touching["target"])
    fig = go.Figure(_edge_traces(placed, drawn) + [_node_trace(placed, marks, neighbours)])
    n_bands = n_layers + 2
    fig.update_layout(
        height=height or int(min(900, max(460, 70 * n_bands + 80))),
        margin={"l": 50, "r": 10, "t": 20, "b": 40},
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        hovermode="closest",
        clickmode="event+select",
        dragmode="pan",
        showlegend=False,
        uirevision="graph",
    )
    fig.update_xaxes(
        tickmode="array",
        tickvals=list(range(len(tokens))),
        ticktext=[html.escape(t) for t in tokens],
        range=[
            min(-0.6, float(placed["x"].min()) - 0.4) if len(placed) else -0.6,
            len(tokens) - 0.4,
        ],
        showgrid=True,
        gridcolor="#f1f5f9",
        zeroline=False,
        tickfont={"size": 12},
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(n_bands)),
        ticktext=band_labels(n_layers),
        range=[-0.6, n_bands - 0.3],
        showgrid=True,
        gridcolor="#f1f5f9",
        zeroline=False,
        fixedrange=False,
    )
    return fig
