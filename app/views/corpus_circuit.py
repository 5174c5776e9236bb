"""Corpus circuit: the aggregate graph of a tag, suggested supernodes, and validation runs.

The circuit is drawn like a graph (layers left to right), node size and edge width by how many of
the tag's graphs support them; a node opens its instances, an instance its graph. Suggestions
group the tag's answer-path features (circuitmap.grouping) and can be saved as supernodes.
Validation runs (`circuitmap validate`) show their distribution and the prompts that failed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.data import connection as app_connection
from app.data import run
from app.ui.guard import run_page, safe_callback
from app.ui.links import open_graph
from db.connection import Neo4jHandle
from queries import corpus
from queries.supernodes import create_supernode

KIND_COLOURS = {
    "token": "#8c8c8c",
    "feature": "#4c78a8",
    "supernode": "#e45756",
    "logit": "#54a24b",
}


def handle() -> Neo4jHandle:
    """The dashboard's connection (the process's checked handle)."""
    return app_connection.get_handle()


@st.cache_data(ttl=run.cache_ttl_s(), show_spinner="Aggregating the corpus circuit…")
def circuit_of(tag: str, min_graphs: int, only: str | None) -> corpus.CorpusCircuit:
    return corpus.corpus_circuit(handle(), tag, None, corpus.PathSearch(min_graphs), only)


@st.cache_data(ttl=run.cache_ttl_s(), show_spinner="Grouping answer-path features…")
def suggestions_of(tag: str, min_graphs: int) -> pd.DataFrame:
    inputs = corpus.suggestion_inputs(handle(), tag, corpus.PathSearch(min_graphs))
    found = corpus.suggest_supernodes(inputs)
    rows = [
        {
            "label": s.label,
            "members": len(s.uids),
            "coverage": s.group.coverage,
            "cohesion": s.group.cohesion,
            "member_uids": s.uids,
        }
        for s in found
    ]
    return pd.DataFrame(rows, columns=["label", "members", "coverage", "cohesion", "member_uids"])


def layout(nodes: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """x: the node's layer (tokens first, logits last); y: spread within its column."""
    columns = sorted(nodes["layer"].unique())
    x_of = {layer: i for i, layer in enumerate(columns)}
    where = {}
    for layer, group in nodes.groupby("layer", sort=True):
        ys = np.linspace(0, 1, len(group) + 2)[1:-1]
        for y, node in zip(ys, group.sort_values("support", ascending=False)["node"], strict=True):
            where[node] = (float(x_of[layer]), float(y))
    return where


def circuit_figure(view: corpus.CorpusCircuit) -> go.Figure:
    nodes, edges = view.nodes, view.edges
    where = layout(nodes)
    figure = go.Figure()
    top = max(1, int(edges["n_graphs"].max())) if len(edges) else 1
    for edge in edges.itertuples(index=False):
        if edge.source not in where or edge.target not in where:
            continue
        (x0, y0), (x1, y1) = where[edge.source], where[edge.target]
        mean = edge.mean_weight
        colour = "#c0504d" if isinstance(mean, float) and mean < 0 else "#9ab"
        figure.add_trace(
            go.Scatter(
                x=[x0, x1], y=[y0, y1], mode="lines", hoverinfo="skip", showlegend=False,
                line={"width": 0.5 + 6 * edge.n_graphs / top, "color": colour},
            )
        )  # fmt: skip
    most = max(1, int(nodes["support"].max())) if len(nodes) else 1
    for kind, group in nodes.groupby("kind"):
        points = [where[n] for n in group["node"]]
        figure.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="markers+text",
                name=kind,
                text=[str(label)[:24] for label in group["label"]],
                textposition="top center",
                customdata=group["node"].tolist(),
                hovertemplate="%{text}<br>%{customdata}<extra></extra>",
                marker={
                    "size": 8 + 30 * group["support"] / most,
                    "color": KIND_COLOURS.get(str(kind), "#999"),
                },
            )
        )
    figure.update_layout(
        height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False}, yaxis={"visible": False},
    )  # fmt: skip
    return figure


def show_instances(view: corpus.CorpusCircuit, node: str) -> None:
    members = view.members.get(node, [])
    if not members:
        st.caption("Token and logit classes have no feature instances.")
        return
    graphs = corpus.tagged_graphs(handle(), view.tag)["graph_uid"].tolist()
    found = corpus.feature_instances(handle(), members, graphs)
    st.markdown(f"**{len(found)} instances** (most influential first; a row opens its graph)")
    if found.empty:
        return
    shown = found[["prompt", "feature_uid", "token", "activation", "influence"]]
    event = st.dataframe(
        shown, hide_index=True, key=f"cc_instances_{node}", on_select="rerun",
        selection_mode="single-row",
    )  # fmt: skip
    if event and event.selection.rows:
        open_graph(found.iloc[event.selection.rows[0]]["graph_uid"])


def circuit_tab(tag: str, min_graphs: int) -> None:
    names = [""] + [s.name for s in _supernodes()]
    only = st.selectbox("Only around supernode", names, key="cc_only") or None
    view = circuit_of(tag, min_graphs, only)
    st.caption(
        f"{len(view.nodes)} nodes, {len(view.edges)} edges over {view.n_graphs} graphs; node "
        "size and edge width: how many graphs support them"
    )
    st.plotly_chart(circuit_figure(view), key="cc_figure")
    st.dataframe(view.nodes, hide_index=True, key="cc_nodes_table")
    labels = dict(zip(view.nodes["node"], view.nodes["label"], strict=True))
    chosen = st.selectbox(
        "Open a node's instances", list(labels), format_func=lambda n: f"{labels[n]} ({n})",
        key="cc_node",
    )  # fmt: skip
    if chosen:
        show_instances(view, chosen)


def _supernodes() -> list:
    from queries.supernodes import list_supernodes

    return list_supernodes(handle())


@safe_callback
def _accept(row: dict, name: str, tag: str) -> None:
    create_supernode(
        handle(), name, description=f"suggested for tag {tag}: {row['label']}",
        members=list(row["member_uids"]),
    )  # fmt: skip
    st.session_state["cc_saved"] = f"saved supernode {name} ({len(row['member_uids'])} features)"
    st.cache_data.clear()


def suggestions_tab(tag: str, min_graphs: int) -> None:
    found = suggestions_of(tag, min_graphs)
    if "cc_saved" in st.session_state:
        st.success(st.session_state.pop("cc_saved"))
    st.markdown(f"**{len(found)} suggested supernodes** for `{tag}` (pick one to save it)")
    event = st.dataframe(
        found.drop(columns=["member_uids"]), hide_index=True, key="cc_suggestions",
        on_select="rerun", selection_mode="single-row",
    )  # fmt: skip
    if event and event.selection.rows:
        row = found.iloc[event.selection.rows[0]].to_dict()
        st.write(", ".join(row["member_uids"]))
        default = "".join(c if c.isalnum() else "-" for c in row["label"] or "suggested")
        name = st.text_input("Supernode name", value=default.strip("-") or "suggested")
        st.button("Save as supernode", key="cc_accept", on_click=_accept, args=(row, name, tag))


def validation_tab() -> None:
    runs = corpus.validation_runs(handle())
    if runs.empty:
        st.info("No validation runs yet: `circuitmap validate SUPERNODE --tag TAG --scale -1`.")
        return
    runs["what"] = [
        f"{r.supernode} "
        + (f"swap with {r.other}" if r.kind == "swap" else f"scale {r.scale:g}")
        + f" on {r.tag}: {r.n_success}/{r.n_present}"
        for r in runs.itertuples()
    ]
    what = st.selectbox("Validation run", runs["what"].tolist(), key="cc_run")
    chosen = runs[runs["what"] == what].iloc[0]
    results = corpus.validation_results(handle(), chosen["uid"])
    present = results[results["present"]]
    c1, c2, c3 = st.columns(3)
    c1.metric("prompts", len(results))
    c2.metric("supernode active in", len(present))
    rate = present["success"].mean() if len(present) else 0.0
    c3.metric("intervention worked", f"{rate:.0%}")
    if chosen["expected"]:
        st.caption(f"A swap succeeds when the top prediction becomes {chosen['expected']!r}.")
    change = (present["p_after"] - present["p_before"]).dropna()
    if len(change):
        figure = go.Figure(go.Histogram(x=change, nbinsx=30))
        figure.update_layout(
            height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10},
            title="answer probability after − before",
        )  # fmt: skip
        st.plotly_chart(figure, key="cc_distribution")
    failed = present[~present["success"]]
    st.markdown(f"**{len(failed)} prompts where it failed** (a row opens the graph)")
    event = st.dataframe(
        failed[["prompt", "answer", "top_before", "top_after", "p_before", "p_after"]],
        hide_index=True, key="cc_failed", on_select="rerun", selection_mode="single-row",
    )  # fmt: skip
    if event and event.selection.rows:
        open_graph(failed.iloc[event.selection.rows[0]]["graph_uid"])


def render() -> None:
    st.title("Corpus circuit")
    tags = run.frame("prompt_tags")
    if tags.empty:
        st.info("No prompts yet: ingest a corpus first.")
        return
    c1, c2 = st.columns([3, 1])
    options = tags["tag"].tolist()
    current = st.query_params.get("tag")
    tag = c1.selectbox(
        "Tag", options, index=options.index(current) if current in options else 0, key="cc_tag"
    )
    min_graphs = int(c2.number_input("Min graphs", 1, 1000, 2, key="cc_min_graphs"))
    tab_circuit, tab_suggest, tab_validate = st.tabs(["Circuit", "Suggestions", "Validation"])
    with tab_circuit:
        circuit_tab(tag, min_graphs)
    with tab_suggest:
        suggestions_tab(tag, min_graphs)
    with tab_validate:
        validation_tab()


run_page(render)
