"""Prompts: search and filter the corpus's graphs, and open one in the graph view."""

import pandas as pd
import streamlit as st

from app.data import supernodes
from app.data.graphs import corpus_stats, search_graphs, tags
from app.data.navigation import graphs_containing, top_predictions
from app.ui.graph_header import picker_labels
from app.ui.guard import EMPTY_DB_HINT, run_page
from app.ui.links import open_graph

LIMIT = 500


def _filters() -> dict[str, object]:
    stats = corpus_stats()
    with st.form("pr_filters", border=True):
        c1, c2, c3, c4 = st.columns([3, 1.2, 1.5, 1.5])
        text = c1.text_input("Prompt text contains", key="pr_text")
        tag = c2.selectbox("Tag", tags(), index=None, key="pr_tag", placeholder="any")
        model = c3.selectbox(
            "Model",
            sorted(stats["model_uid"].dropna().unique()),
            index=None,
            key="pr_model",
            placeholder="any",
        )
        transcoder = c4.selectbox(
            "Transcoder",
            sorted(stats["transcoder_uid"].dropna().unique()),
            index=None,
            key="pr_transcoder",
            placeholder="any",
        )
        c9, c10 = st.columns([3, 3])
        feature = c9.text_input(
            "Contains feature", key="pr_feature", placeholder="feature uid, e.g. clt/3/1207"
        )
        supernode = c10.selectbox(
            "Contains supernode",
            [n.name for n in supernodes.list_all()],
            index=None,
            key="pr_supernode",
            placeholder="any",
        )
        c5, c6, c7, c8 = st.columns([1.5, 1.5, 1.5, 1])
        min_rep = c5.slider("Min replacement score", 0.0, 1.0, 0.0, 0.01, key="pr_min_rep")
        min_comp = c6.slider("Min completeness score", 0.0, 1.0, 0.0, 0.01, key="pr_min_comp")
        status = c7.selectbox("Status", ["complete", "failed", "any"], key="pr_status")
        c8.form_submit_button("Search", icon=":material/search:", width="stretch")
    return {
        "text": text or None,
        "tag": tag,
        "model": model,
        "transcoder": transcoder,
        "min_replacement": min_rep or None,
        "min_completeness": min_comp or None,
        "status": None if status == "any" else status,
        "limit": LIMIT,
        "contains_feature": feature.strip() or None,
        "contains_supernode": supernode,
    }


def containing(found: pd.DataFrame, feature: str | None, supernode: str | None) -> pd.DataFrame:
    """The graphs of `found` with a node of `feature` and of a member of `supernode`."""
    for kwargs in ({"feature": feature}, {"supernode": supernode}):
        if next(iter(kwargs.values())):
            hits = set(graphs_containing(**kwargs)["graph_uid"])
            found = found[found["graph_uid"].isin(hits)]
    return found


def with_predictions(found: pd.DataFrame) -> pd.DataFrame:
    """`found` with each complete graph's top prediction and whether it is the expected answer."""
    done = found.loc[found["status"] == "complete", "graph_uid"].tolist()
    top = top_predictions(done).set_index("graph_uid")
    out = found.copy()
    out["top_prediction"] = out["graph_uid"].map(top["top_token"]) if len(top) else None
    out["correct"] = out["graph_uid"].map(top["correct"]) if len(top) else None
    return out


def render() -> None:
    st.title("Prompts")
    if corpus_stats().empty:
        st.info(EMPTY_DB_HINT, icon=":material/database:")
        return
    filters = _filters()
    feature, supernode = filters.pop("contains_feature"), filters.pop("contains_supernode")
    found = search_graphs(**filters)
    if feature or supernode:
        found = containing(found, feature, supernode)
    st.caption(
        f"{len(found):,} graph{'s' if len(found) != 1 else ''}"
        + (f" (first {LIMIT})" if len(found) == LIMIT else "")
    )
    if found.empty:
        st.info("No graph matches these filters.")
        return
    found = with_predictions(found)
    event = st.dataframe(
        found[
            [
                "prompt",
                "tags",
                "answer",
                "top_prediction",
                "correct",
                "status",
                "replacement_score",
                "completeness_score",
                "n_nodes",
                "n_edges",
                "model_uid",
                "transcoder_uid",
                "created_at",
                "error",
            ]
        ],
        hide_index=True,
        key="pr_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "prompt": st.column_config.TextColumn("prompt", width="large"),
            "top_prediction": st.column_config.TextColumn(
                "top prediction", help="The graph's most probable next token"
            ),
            "correct": st.column_config.CheckboxColumn(
                "expected?", help="Whether the top prediction is the expected answer"
            ),
            "replacement_score": st.column_config.NumberColumn("replacement", format="%.3f"),
            "completeness_score": st.column_config.NumberColumn("completeness", format="%.3f"),
        },
    )
    complete = found[found["status"] == "complete"]
    rows = event.selection.rows if event else []
    if rows and found.iloc[rows[0]]["status"] == "complete":
        open_graph(found.iloc[rows[0]]["graph_uid"])
    st.caption("Select a row to open its graph, or pick one here:")
    c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
    labels = picker_labels(complete)
    chosen = c1.selectbox("Graph", list(labels), format_func=labels.get, key="pr_open_choice")
    if c2.button(
        "Open graph", key="pr_open", disabled=chosen is None, icon=":material/account_tree:"
    ):
        open_graph(chosen)


run_page(render)
