"""Draw a graph collapsed to supernodes (hexagons), as `queries.supernodes.collapsed_graph`
computes it (the one collapse, queries/collapse.py)."""

from __future__ import annotations

import streamlit as st

from app.data.graphs import tokens_of
from app.graphview.figure import ViewMarks, graph_figure
from app.graphview.frames import normalize_nodes
from app.graphview.layout import layout
from app.ui.graph_panel import PLOT_CONFIG
from queries.collapse import GROUP_PREFIX
from queries.supernodes import CollapsedGraph


def show_collapsed(view: CollapsedGraph, n_layers: int, key: str) -> None:
    merged, shared = normalize_nodes(view.view_nodes), view.view_edges
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
