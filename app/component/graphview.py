"""The client-side graph view: a Streamlit Components v2 component whose JavaScript (built from
frontend/ with npm: `make component`) draws the graph and answers hover, select, walk, pin,
box-select, group, threshold, edge-weight filter and hide-errors in the browser.

It is mounted twice per page. The chart instance (`graph_view`) gets the graph and the catalogue
cards of its features, and nothing else, so its message is the same on every rerun and Streamlit
sends it to a browser once (later reruns send a reference to the browser's copy). The pinned
instance (`pinned_view`) draws the pinned subgraph (draggable) from the chart's graph in the
page, and carries the URL's view state to the chart. The chart sends the view state back (state
"view") only when the user changed it, so that it can be kept in the URL."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app.graphview.state import GraphViewState

FRONTEND = Path(__file__).resolve().parent / "frontend"
BUILT_JS = FRONTEND / "dist" / "graphview.js"
BUILT_CSS = FRONTEND / "dist" / "graphview.css"
COMPONENT_NAME = "circuitmap_graphview"
CARD_COLUMNS = [
    "feature_uid",
    "label",
    "top_contexts",
    "top_logits",
    "top_logit_effects",
    "bottom_logits",
    "bottom_logit_effects",
]


class ComponentNotBuiltError(RuntimeError):
    """The component's JavaScript has not been built."""


@cache
def _renderer() -> Callable[..., object]:
    if not BUILT_JS.is_file():
        raise ComponentNotBuiltError(
            f"the graph view's JavaScript is not built ({BUILT_JS} is missing): run "
            "`make component` (npm ci && npm run build in app/component/frontend)"
        )
    return st.components.v2.component(
        COMPONENT_NAME, js=BUILT_JS.read_text(), css=BUILT_CSS.read_text(), isolate_styles=True
    )


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values).tobytes()).decode("ascii")


def _column(values: pd.Series) -> list:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values]


def graph_payload(
    uid: str,
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    tokens: list[str],
    n_layers: int,
    cards: pd.DataFrame,
) -> dict[str, object]:
    """The graph as the component reads it: node columns as lists, edges as base64 typed arrays
    (source and target node indices as uint16, or int32 past 65,535 nodes, and float32 weights:
    350,000 edges are 2.8 MB; the browser derives each edge's share of its target's input), and
    the catalogue cards of its features."""
    index = pd.Index(nodes["node_id"])
    source = index.get_indexer(edges["source"])
    target = index.get_indexer(edges["target"])
    known = (source >= 0) & (target >= 0)
    index_type = np.uint16 if len(nodes) <= np.iinfo(np.uint16).max else np.int32
    node_cols = {
        "id": nodes["node_id"].tolist(),
        "kind": nodes["kind"].tolist(),
        "layer": nodes["layer"].astype(int).tolist(),
        "position": nodes["position"].astype(int).tolist(),
        "token": nodes["token"].tolist(),
        "label": nodes["label"].tolist(),
        "caption": nodes["caption"].tolist(),
        "feature_uid": _column(nodes["feature_uid"]),
        "activation": _column(nodes["activation"].round(4)),
        "influence": _column(nodes["influence"].round(5)),
        "probability": _column(nodes["probability"].round(5)),
    }
    shown_cards = cards[[c for c in CARD_COLUMNS if c in cards.columns]] if len(cards) else cards
    return {
        "version": _version(uid, len(nodes), len(edges)),
        "tokens": list(tokens),
        "n_layers": int(n_layers),
        "nodes": node_cols,
        "edges": {
            "index_bytes": np.dtype(index_type).itemsize,
            "source": _b64(source[known].astype(index_type)),
            "target": _b64(target[known].astype(index_type)),
            "weight": _b64(edges["weight"].to_numpy(np.float32)[known]),
        },
        "cards": [_card(r) for r in shown_cards.to_dict("records")],
    }


def _card(row: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple | np.ndarray) else v) for k, v in row.items()}


def _version(uid: str, n_nodes: int, n_edges: int) -> str:
    return hashlib.sha1(f"{uid}:{n_nodes}:{n_edges}".encode()).hexdigest()[:12]


def view_state(state: GraphViewState) -> dict[str, object]:
    return {
        "selected": state.selected,
        "pinned": list(state.pinned),
        "groups": {k: list(v) for k, v in state.groups.items()},
        "threshold": state.threshold,
    }


def graph_view(payload: dict[str, object], key: str, on_change: Callable[[], None]) -> object:
    """Mount the chart; `on_change` runs when it sends a new view state (read it with
    `sent_state(key)`). It starts from the state that `pinned_view` brings it."""
    data = {**payload, "kind": "graph", "name": key}
    return _renderer()(data=data, key=key, default={"view": None}, on_view_change=on_change)


def pinned_view(state: GraphViewState, chart_key: str, key: str, height: int = 360) -> object:
    """Mount the pinned subgraph of the chart mounted under `chart_key` (its nodes with their
    labels, laid out by token and layer, draggable), and hand the chart the URL's view state."""
    data = {"kind": "pinned", "view": chart_key, "height": height, "state": view_state(state)}
    return _renderer()(data=data, key=key)


def sent_state(key: str) -> dict | None:
    """The view state the component last sent, or None."""
    value = st.session_state.get(key)
    if value is None:
        return None
    view = value.get("view") if isinstance(value, dict) else getattr(value, "view", None)
    return view if isinstance(view, dict) else None


def apply_sent_state(target: GraphViewState, sent: dict) -> None:
    """Copy what the component sent onto `target` (the URL's state); bad values are dropped."""
    target.selected = str(sent.get("selected") or "")
    target.pinned = [str(p) for p in dict.fromkeys(sent.get("pinned") or [])]
    groups = sent.get("groups") or {}
    target.groups = {
        str(k): [str(m) for m in v if str(m) in target.pinned]
        for k, v in groups.items()
        if isinstance(v, list)
    }
    target.groups = {k: v for k, v in target.groups.items() if v}
    threshold = sent.get("threshold")
    if isinstance(threshold, int | float) and 0 < threshold <= 1:
        target.threshold = float(threshold)


def circuit_payload(
    nodes: pd.DataFrame, edges: pd.DataFrame, height: int = 560
) -> dict[str, object]:
    """A corpus circuit (queries.corpus.CorpusCircuit's nodes and edges) as the component's
    "circuit" kind reads it: node and edge columns as lists, and a version that changes with
    them (a new version is drawn afresh; the same one keeps where nodes were dragged)."""
    columns = {
        "nodes": {
            "id": nodes["node"].astype(str).tolist(),
            "kind": nodes["kind"].astype(str).tolist(),
            "label": [str(v) if isinstance(v, str) else "" for v in nodes["label"]],
            "layer": nodes["layer"].astype(int).tolist(),
            "support": nodes["support"].astype(int).tolist(),
        },
        "edges": {
            "source": edges["source"].astype(str).tolist(),
            "target": edges["target"].astype(str).tolist(),
            "n_graphs": edges["n_graphs"].astype(int).tolist(),
            "mean_weight": [round(float(w), 4) for w in edges["mean_weight"].fillna(0.0)],
        },
    }
    version = hashlib.sha1(json.dumps(columns, sort_keys=True).encode()).hexdigest()[:12]
    return {"kind": "circuit", "version": version, "height": height, **columns}


def circuit_view(
    nodes: pd.DataFrame, edges: pd.DataFrame, key: str, on_open: Callable[[], None]
) -> object:
    """Mount a corpus circuit; `on_open` runs when a node is clicked (read it with
    `opened_node(key)`)."""
    data = circuit_payload(nodes, edges)
    return _renderer()(data=data, key=key, default={"node": None}, on_node_change=on_open)


def opened_node(key: str) -> str | None:
    """The corpus circuit node last clicked in the component under `key`, or None."""
    value = st.session_state.get(key)
    node = value.get("node") if isinstance(value, dict) else getattr(value, "node", None)
    return node if isinstance(node, str) else None
