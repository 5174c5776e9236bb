"""Draw one path (a query result row's node ids) inside its graph."""

from __future__ import annotations

import streamlit as st

from app.data.graphs import load_graph
from app.graphview.connections import with_shares
from app.graphview.figure import ViewMarks, graph_figure
from app.graphview.layout import layout
from app.ui.graph_panel import PLOT_CONFIG
from app.ui.links import graph_link


def show_path(graph_uid: str, node_ids: list[str], key: str) -> None:
    """The path's nodes and the edges joining consecutive ones, drawn on the graph's grid."""
    bundle = load_graph(graph_uid)
    on_path = bundle.nodes[bundle.nodes["node_id"].isin(node_ids)]
    steps = set(zip(node_ids[:-1], node_ids[1:], strict=True))
    shared = with_shares(bundle.edges)
    pairs = list(zip(shared["source"], shared["target"], strict=True))
    path_edges = shared[[pair in steps for pair in pairs]]
    fig = graph_figure(
        layout(on_path, bundle.n_layers),
        path_edges,
        bundle.n_layers,
        bundle.tokens,
        ViewMarks("", list(node_ids), {}),
        height=380,
    )
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG)
    graph_link(graph_uid, "Open the full graph with this path pinned", pin=",".join(node_ids))
