"""The header of a graph: its prompt, identity and scores, and a picker to open another graph."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.data.graphs import GraphBundle, graph_label, search_graphs
from app.graphview.state import GraphViewState
from app.ui import urlstate

PICKER_LIMIT = 500


def graph_choices(current: str = "") -> dict[str, str]:
    """Complete graphs (newest first) by uid with their picker labels; `current` always in."""
    graphs = search_graphs(status="complete", limit=PICKER_LIMIT)
    labels = {r["graph_uid"]: graph_label(r) for r in graphs.to_dict("records")}
    if current and current not in labels:
        labels = {current: current, **labels}
    return labels


def sidebar_graph_picker(state: GraphViewState) -> bool:
    """Sidebar picker opening the chosen graph in a fresh view; False when there are no graphs."""
    labels = graph_choices(state.graph)
    if not labels:
        return False
    st.session_state["gv_pick"] = state.graph or None
    st.sidebar.selectbox(
        "Graph",
        list(labels),
        format_func=labels.get,
        key="gv_pick",
        placeholder="choose a prompt's graph",
        on_change=lambda: urlstate.write(GraphViewState(graph=st.session_state["gv_pick"] or "")),
    )
    return True


def graph_header(bundle: GraphBundle) -> None:
    info = bundle.info
    answer = f"  →  expected **{info['answer']}**" if info.get("answer") else ""
    st.markdown(f"### “{info['prompt']}”{answer}")
    tags = ", ".join(info.get("tags") or [])
    st.caption(
        f"model `{info['model_uid']}` · transcoder `{info['transcoder_uid']}` · "
        f"{'tags ' + tags + ' · ' if tags else ''}graph `{info['graph_uid']}`"
    )
    cols = st.columns(4)
    cols[0].metric("Replacement score", _score(info.get("replacement_score")))
    cols[1].metric("Completeness score", _score(info.get("completeness_score")))
    cols[2].metric("Nodes", f"{len(bundle.nodes):,}")
    cols[3].metric("Edges", f"{len(bundle.edges):,}")


def _score(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.3f}"
