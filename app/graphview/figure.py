"""The Plotly figure of one attribution graph, in the Neuronpedia visual language.

Squares for tokens and logits, diamonds for errors, circles for features; edges only for the
selected node and between pinned nodes, width ~ sqrt(share), purple (negative) to green
(positive); the selected node magenta. Node traces carry node ids in `customdata`, so a click maps
to a node id. Traces and layout are built as plain dicts and validated once, by one `go.Figure`:
building them as graph objects and updating them validated every piece several times over."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from app.graphview.connections import INFLUENCE_HINT, node_caption
from app.graphview.frames import among
from app.graphview.layout import band_labels

SELECTED_COLOR = "#ff00ff"
OUTLINE_COLOR = "#ea580c"
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
CROWDED_CELL = 16  # nodes in one cell above which feature markers shrink


@dataclass
class ViewMarks:
    """What the user has marked in the view."""

    selected: str = ""
    pinned: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    outlined: list[str] = field(default_factory=list)  # emphasised, without drawing their edges


def edges_to_draw(shared_edges: pd.DataFrame, marks: ViewMarks) -> pd.DataFrame:
    """Edges touching the selected node, plus edges between pinned nodes."""
    source, target = shared_edges["source"], shared_edges["target"]
    mask = np.zeros(len(shared_edges), dtype=bool)
    if len(marks.pinned) > 1:
        mask |= among(source, marks.pinned) & among(target, marks.pinned)
    if marks.selected:
        mask |= ((source == marks.selected) | (target == marks.selected)).to_numpy()
    return shared_edges[mask]


@cache
def edge_color(sign: float, level: float) -> str:
    """PRGn colour: purple for negative, green for positive, deeper for stronger (level in 0..1)."""
    return sample_colorscale("PRGn", [0.5 + sign * (0.2 + 0.3 * level)])[0]


def _edge_traces(placed: pd.DataFrame, edges: pd.DataFrame) -> list[dict]:
    if edges.empty:
        return []
    xy = placed.set_index("node_id")[["x", "y"]]
    src = xy.reindex(edges["source"]).to_numpy()
    dst = xy.reindex(edges["target"]).to_numpy()
    drawn = ~(np.isnan(src[:, 0]) | np.isnan(dst[:, 0]))  # both ends placed
    src, dst, edges = src[drawn], dst[drawn], edges[drawn]
    strength = np.sqrt(edges["share"].clip(0, 1).to_numpy())
    level = np.minimum((strength * EDGE_LEVELS).astype(int), EDGE_LEVELS - 1)
    sign = np.where(edges["weight"].to_numpy() >= 0, 1, -1)
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
                {
                    "type": "scatter",
                    "x": xs,
                    "y": ys,
                    "mode": "lines",
                    "line": {"width": 0.6 + 7 * frac, "color": edge_color(s, frac)},
                    "opacity": 0.85,
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "name": f"edges {'+' if s > 0 else '-'}{lv}",
                }
            )
    return traces


def _fmt(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.3g}"


def hover_text(row: dict) -> str:
    """A node's hover label (Plotly's HTML subset). Kept short: hover labels are most of the
    figure's bytes. Quotes stay unescaped (text, not an attribute); the caption already names a
    feature's layer and index."""
    caption = html.escape(node_caption(row), quote=False)
    if row["kind"] == "logit":
        detail = f"p = {_fmt(row['probability'])}"
    else:
        token = html.escape(row["token"], quote=False)
        detail = (
            f"'{token}' · act {_fmt(row['activation'])} · influence {_fmt(row['influence'])}"
            f" ({INFLUENCE_HINT})"
        )
    return f"<b>{caption}</b><br>{detail}"


def _crowding(placed: pd.DataFrame) -> int:
    """Nodes in the fullest (band, position) cell."""
    inner = placed[among(placed["kind"], ("feature", "error", "supernode"))]
    return int(inner.groupby(["band", "position"]).size().max()) if len(inner) else 1


def _sizes(placed: pd.DataFrame) -> np.ndarray:
    """Marker sizes: by kind, grown by influence (features, errors) or probability (logits), and
    shrunk for features and errors when cells are crowded so that neighbours stay apart."""
    base = placed["kind"].map({k: v[2] for k, v in KIND_STYLE.items()}).fillna(7).to_numpy(float)
    influence = placed["influence"].clip(0, 1).to_numpy(float)
    inner = among(placed["kind"], ("feature", "error"))
    grow = np.where(inner, 8 * (1 - influence), 0.0)
    prob = placed["probability"].clip(0, 1).to_numpy(float)
    grow = np.where(placed["kind"] == "logit", 14 * np.sqrt(prob), grow)
    shrink = np.clip(np.sqrt(CROWDED_CELL / _crowding(placed)), 0.45, 1.0)
    return np.round((base + np.nan_to_num(grow)) * np.where(inner, shrink, 1.0), 1)


def _styles(placed: pd.DataFrame, marks: ViewMarks, neighbours: set[str]) -> np.ndarray:
    """Each node's style: selected, group:<i>, pinned, outlined, faded or normal."""
    group_of = {m: f"group:{i}" for i, members in enumerate(marks.groups.values()) for m in members}
    pinned, outlined = set(marks.pinned), set(marks.outlined)
    styles = []
    for nid in placed["node_id"]:
        if nid == marks.selected:
            styles.append("selected")
        elif nid in group_of:
            styles.append(group_of[nid])
        elif nid in pinned:
            styles.append("pinned")
        elif nid in outlined:
            styles.append("outlined")
        elif marks.selected and nid not in neighbours:
            styles.append("faded")
        else:
            styles.append("normal")
    return np.array(styles, dtype=object)


def _labels(part: pd.DataFrame) -> list[str]:
    """Text shown above logits (token and probability) and supernodes (their name)."""
    out = []
    for kind, token, p, label in zip(
        part["kind"], part["token"], part["probability"].fillna(0), part["label"], strict=True
    ):
        if kind == "supernode":
            out.append(html.escape(str(label), quote=False))
        else:
            out.append(
                f"{html.escape(token, quote=False)} {p:.0%}"
                if p >= 0.01
                else f"{html.escape(token, quote=False)} <1%"
            )
    return out


def _marker_style(kind: str, style: str) -> tuple[str, str, dict, float]:
    """(symbol, fill colour, outline, opacity) of the nodes of one kind in one style."""
    symbol, color, _ = KIND_STYLE.get(kind, KIND_STYLE["feature"])
    line, opacity = {"width": 0.6, "color": "#ffffff"}, 1.0
    if style == "selected":
        color, line = SELECTED_COLOR, {"width": 2, "color": "#111827"}
    elif style.startswith("group:"):
        color = GROUP_COLORS[int(style.split(":")[1]) % len(GROUP_COLORS)]
        line = {"width": 2.5, "color": "#111827"}
    elif style == "pinned":
        line = {"width": 2.5, "color": "#111827"}
    elif style == "outlined":
        line = {"width": 1.6, "color": OUTLINE_COLOR}
    elif style == "faded":
        opacity = 0.3
    return symbol, color, line, opacity


def _node_traces(placed: pd.DataFrame, marks: ViewMarks, neighbours: set[str]) -> list[dict]:
    """One trace per (kind, style), so every marker property is a scalar except size: far less
    JSON and faster drawing than per-point style arrays."""
    sizes = _sizes(placed)
    styles = _styles(placed, marks, neighbours)
    hover = (
        placed["hover"].to_numpy(object)
        if "hover" in placed.columns
        else np.array([hover_text(r) for r in placed.to_dict("records")], dtype=object)
    )
    traces = []
    for (kind, style), rows in placed.groupby([placed["kind"], styles], sort=False).groups.items():
        idx = placed.index.get_indexer(rows)
        symbol, color, line, opacity = _marker_style(kind, style)
        part = placed.iloc[idx]
        trace = {
            "type": "scatter",
            "x": np.round(part["x"].to_numpy(float), 4),
            "y": np.round(part["y"].to_numpy(float), 4),
            "mode": "markers",
            "name": f"{NODES_TRACE_NAME}:{kind}:{style}",
            "customdata": part["node_id"].to_numpy(object),
            "hovertext": hover[idx],
            "hoverinfo": "text",
            "marker": {
                "symbol": symbol,
                "color": color,
                "size": sizes[idx] * (1.5 if style == "selected" else 1.0),
                "opacity": opacity,
                "line": line,
            },
            "showlegend": False,
        }
        if kind in ("logit", "supernode"):
            trace |= {
                "mode": "markers+text",
                "text": _labels(part),
                "textposition": "top center",
                "textfont": {"size": 11, "color": "#92400e"},
            }
        traces.append(trace)
    return traces


def _height(n_bands: int, crowding: int) -> int:
    """Taller bands for crowded graphs, within what fits a screen."""
    per_band = 70 + min(50, 2 * crowding)
    return int(min(1000, max(460, per_band * n_bands + 80)))


def graph_figure(
    placed: pd.DataFrame,
    shared_edges: pd.DataFrame,
    n_layers: int,
    tokens: list[str],
    marks: ViewMarks,
    height: int | None = None,
) -> go.Figure:
    """Figure of positioned nodes (`layout.layout` output) and the edges the marks call for."""
    if marks.selected not in set(placed["node_id"]):
        marks = ViewMarks("", marks.pinned, marks.groups, marks.outlined)
    drawn = edges_to_draw(shared_edges, marks)
    neighbours = set()
    if marks.selected:
        touching = drawn[(drawn["source"] == marks.selected) | (drawn["target"] == marks.selected)]
        neighbours = set(touching["source"]) | set(touching["target"])
    n_bands = n_layers + 2
    axis = {"tickmode": "array", "showgrid": True, "gridcolor": "#f1f5f9", "zeroline": False}
    figure_layout = {
        "height": height or _height(n_bands, _crowding(placed) if len(placed) else 1),
        "margin": {"l": 50, "r": 10, "t": 20, "b": 40},
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "hovermode": "closest",
        "clickmode": "event+select",
        "dragmode": "pan",
        "showlegend": False,
        "uirevision": "graph",
        "xaxis": axis
        | {
            "tickvals": list(range(len(tokens))),
            "ticktext": [html.escape(t, quote=False) for t in tokens],
            "range": [
                min(-0.6, float(placed["x"].min()) - 0.4) if len(placed) else -0.6,
                len(tokens) - 0.4,
            ],
            "tickfont": {"size": 12},
        },
        "yaxis": axis
        | {
            "tickvals": list(range(n_bands)),
            "ticktext": band_labels(n_layers),
            "range": [-0.6, n_bands - 0.3],
            "fixedrange": False,
        },
    }
    traces = _edge_traces(placed, drawn) + _node_traces(placed, marks, neighbours)
    return go.Figure({"data": traces, "layout": figure_layout})
