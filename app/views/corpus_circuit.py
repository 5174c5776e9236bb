"""Corpus circuit: the aggregate graph of a tag, suggested supernodes, and validation runs.

The circuit is drawn like a graph (layers left to right), node size and edge width by how many of
the tag's graphs support them; a node opens its instances, an instance its graph. Suggestions
group the tag's answer-path features (circuitmap.grouping) and can be saved as supernodes.
Validation runs (`circuitmap validate`) show their distribution and the prompts that failed."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.component.graphview import circuit_view, opened_node
from app.data import connection as app_connection
from app.data import run
from app.ui.guard import run_page, safe_callback
from app.ui.links import open_graph
from db.connection import Neo4jHandle
from queries import corpus
from queries.supernodes import create_supernode


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
    labels = dict(zip(view.nodes["node"], view.nodes["label"], strict=True))
    circuit_view(view.nodes, view.edges, "cc_circuit", on_open=lambda: _open_clicked(labels))
    st.dataframe(view.nodes, hide_index=True, key="cc_nodes_table")
    chosen = st.selectbox(
        "Open a node's instances", list(labels), format_func=lambda n: f"{labels[n]} ({n})",
        key="cc_node",
    )  # fmt: skip
    if chosen:
        show_instances(view, chosen)


def _open_clicked(labels: dict[str, str]) -> None:
    """A node clicked in the drawn circuit opens its instances (the picker below follows)."""
    node = opened_node("cc_circuit")
    if node in labels:
        st.session_state["cc_node"] = node


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


def _or(value: float | None, default: float) -> float:
    """A run's option, or its default where the run was stored before the option existed."""
    return default if value is None or pd.isna(value) else float(value)


def validation_tab() -> None:
    runs = corpus.validation_runs(handle())
    if runs.empty:
        st.info("No validation runs yet: `circuitmap validate SUPERNODE --tag TAG --scale -1`.")
        return
    runs["what"] = [
        f"{r.supernode} "
        + (
            f"swap with {r.other} (strength {_or(r.strength, 1.0):g}, "
            f"remove x{_or(r.remove_scale, 0.0):g})"
            if r.kind == "swap"
            else f"scale {r.scale:g}"
        )
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
