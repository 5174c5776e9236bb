"""Draw a graph collapsed to supernodes (hexagons), from the database's collapsed-graph query."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.data.graphs import tokens_of
from app.graphview.collapse import collapse
from app.graphview.figure import ViewMarks, graph_figure
from app.graphview.frames import normalize_nodes
from app.graphview.layout import layout
from app.ui.graph_panel import PLOT_CONFIG

GROUP_PREFIX = "group:"


def collapsed_frames(nodes: pd.DataFrame, edges: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nodes with members merged, edges with supernode names as `group:<name>` ids)."""
    members = nodes[nodes["in_supernode"]]
    groups = {name: part["node_id"].tolist() for name, part in members.groupby("group")}
    merged, _ = collapse(
        normalize_nodes(nodes.drop(columns=["group", "in_supernode"])),
        edges.iloc[0:0][["source", "target", "weight"]],
        groups,
    )
    rename = {name: GROUP_PREFIX + name for name in groups}
    out = edges.copy()
    out["source"] = out["source"].map(lambda s: rename.get(s, s))
    out["target"] = out["target"].map(lambda t: rename.get(t, t))
    return merged, out


def show_collapsed(nodes: pd.DataFrame, edges: pd.DataFrame, n_layers: int, key: str) -> None:
    merged, shared = collapsed_frames(nodes, edges)
    supers = merged.loc[merged["kind"] == "supernode", "node_id"].tolist()
    if not supers:
        st.info("None of the chosen supernodes has a member in this graph.")
    focus = st.selectbox(
        "Show the edges of",
        supers,
        index=0 if supers else None,
        key=f"{key}_focus",
        format_func=lambda s: s.removeprefix(GROUP_PREFIX),
    )
    fig = graph_figure(
        layout(merged, n_layers),
        shared,
        n_layers,
        tokens_of(merged),
        ViewMarks(focus or "", supers, {}),
    )
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG)
    st.caption(
        f"{len(supers)} supernode(s) · {len(merged):,} nodes after collapsing · edges shown "
        "between supernodes and for the chosen one (summed member edges)"
    )
