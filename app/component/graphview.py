"""The client-side graph view: a Streamlit Components v2 component whose JavaScript (built from
frontend/ with npm: `make component`) draws the graph and answers hover, select, walk, pin, group,
threshold, edge-weight filter and hide-errors in the browser. Python sends the graph, the catalogue
cards of its features and the URL's view state once; the component sends the view state back
(state "view") only when the user changed it, so that it can be kept in the URL."""

from __future__ import annotations

import base64
import hashlib
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
    (int32 source and target node indices, float32 weight and share: 350,000 edges are 5.6 MB,
    a third of the JSON), and the catalogue cards of its features."""
    index = pd.Index(nodes["node_id"])
    source = index.get_indexer(edges["source"])
    target = index.get_indexer(edges["target"])
    known = (source >= 0) & (target >= 0)
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
            "source": _b64(source[known].astype(np.int32)),
            "target": _b64(target[known].astype(np.int32)),
            "weight": _b64(edges["weight"].to_numpy(np.float32)[known]),
            "share": _b64(edges["share"].to_numpy(np.float32)[known]),
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


def graph_view(
    payload: dict[str, object],
    state: GraphViewState,
    key: str,
    on_change: Callable[[], None],
) -> object:
    """Mount the component; `on_change` runs when it sends a new view state (read it with
    `sent_state(key)`)."""
    data = {**payload, "state": view_state(state)}
    return _renderer()(data=data, key=key, default={"view": None}, on_view_change=on_change)


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
