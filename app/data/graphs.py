"""Graphs for the views: one graph with its nodes and edges, lists of graphs, differences."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app.data import run
from app.data.connection import get_handle
from app.graphview.connections import node_caption, with_shares
from app.graphview.figure import hover_text
from app.graphview.frames import normalize_edges, normalize_nodes
from queries.graph_reader import read_edges


@dataclass
class GraphBundle:
    """Everything the graph view draws for one graph."""

    info: dict[str, object]
    nodes: pd.DataFrame  # graphview.frames columns + caption, hover
    edges: pd.DataFrame  # source, target, weight, share
    n_layers: int
    tokens: list[str]

    @property
    def uid(self) -> str:
        return str(self.info["graph_uid"])


def graph_info(graph_uid: str) -> dict[str, object] | None:
    rows = run.frame("graph_summary", graph=graph_uid)
    return rows.iloc[0].to_dict() if len(rows) else None


@st.cache_resource(ttl=run.cache_ttl_s(), show_spinner=False, max_entries=16)
def load_graph(graph_uid: str) -> GraphBundle:
    """The graph's header, nodes (with captions and hover labels) and edges (with shares), cached
    so that every click in the view reuses them; LookupError for an unknown or failed graph.

    One copy shared by every session and rerun (a cache_data copy of a 350k-edge graph costs a
    few hundred ms per rerun): callers must not modify it."""
    info = graph_info(graph_uid)
    if info is None:
        raise LookupError(f"no graph with uid {graph_uid!r} in the database")
    if info["status"] != "complete":
        raise LookupError(
            f"graph {graph_uid!r} failed to compute: {info.get('error') or 'no reason'}"
        )
    nodes = normalize_nodes(run.frame("graph_nodes", graph=graph_uid))
    records = nodes.to_dict("records")
    nodes["caption"] = [node_caption(r) for r in records]
    nodes["hover"] = [hover_text(r) for r in records]
    edges = with_shares(normalize_edges(read_edges(get_handle(), graph_uid)))
    tokens = info.get("prompt_tokens")
    tokens = list(tokens) if isinstance(tokens, list) and tokens else tokens_of(nodes)
    return GraphBundle(info, nodes, edges, _n_layers(info, nodes), tokens)


def tokens_of(nodes: pd.DataFrame) -> list[str]:
    """Prompt tokens by position, from the token nodes (pruning always keeps them)."""
    toks = nodes[nodes["kind"] == "token"].sort_values("position")
    n_pos = int(nodes["position"].max()) + 1 if len(nodes) else 0
    by_pos = dict(zip(toks["position"], toks["token"], strict=True))
    return [by_pos.get(p, "") for p in range(n_pos)]


def _n_layers(info: dict[str, object], nodes: pd.DataFrame) -> int:
    value = info.get("n_layers")
    if value is not None and not pd.isna(value):
        return int(value)
    inner = nodes.loc[nodes["kind"].isin(("feature", "error")), "layer"]
    return int(inner.max()) + 1 if len(inner) else 1


def search_graphs(**filters: object) -> pd.DataFrame:
    return run.frame("graph_search", **filters)


def corpus_stats() -> pd.DataFrame:
    return run.frame("corpus_stats")


def tags() -> list[str]:
    return run.frame("prompt_tags")["tag"].tolist()


def graph_diff(graph_a: str, graph_b: str, limit: int = 50) -> pd.DataFrame:
    return run.frame("graph_diff", graph_a=graph_a, graph_b=graph_b, limit=limit)


def graph_label(row: dict | pd.Series) -> str:
    """How a graph is named in pickers: its prompt, transcoder and uid. Labels must be unique:
    a selectbox maps the label it shows back to its option."""
    return f"{row['prompt']}  ·  {row['transcoder_uid']}  [{row['graph_uid']}]"
