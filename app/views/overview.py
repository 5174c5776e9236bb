"""Overview: what is in the database, how good the graphs are, and what the last ingests did."""

import streamlit as st

from app.data.graphs import corpus_stats, search_graphs
from app.ui.charts import score_histogram, size_histogram
from app.ui.guard import EMPTY_DB_HINT, run_page

RECENT = 25
SCORE_SAMPLE = 10_000


def render() -> None:
    st.title("circuitmap")
    st.caption("Attribution graphs of a whole corpus, stored in Neo4j.")
    stats = corpus_stats()
    if stats.empty or stats["graphs_complete"].sum() + stats["graphs_failed"].sum() == 0:
        st.info(EMPTY_DB_HINT, icon=":material/database:")
        return
    totals = st.columns(5)
    totals[0].metric("Prompts", f"{int(stats['prompts'].sum()):,}")
    totals[1].metric("Complete graphs", f"{int(stats['graphs_complete'].sum()):,}")
    totals[2].metric("Failed graphs", f"{int(stats['graphs_failed'].sum()):,}")
    totals[3].metric("Edges", f"{int(stats['edges'].fillna(0).sum()):,}")
    totals[4].metric("Features seen", f"{int(stats['features_seen'].sum()):,}")

    st.subheader("By model and transcoder")
    st.dataframe(stats, hide_index=True, key="ov_stats")

    graphs = search_graphs(status="complete", limit=SCORE_SAMPLE)
    left, right = st.columns(2)
    with left:
        st.subheader("Score distributions")
        st.plotly_chart(score_histogram(graphs), key="ov_scores")
    with right:
        st.subheader("Graph sizes")
        st.plotly_chart(size_histogram(graphs), key="ov_sizes")

    st.subheader("Recent ingests")
    recent = search_graphs(limit=RECENT)
    st.dataframe(
        recent[
            [
                "created_at",
                "status",
                "prompt",
                "transcoder_uid",
                "n_nodes",
                "n_edges",
                "replacement_score",
                "completeness_score",
                "error",
            ]
        ],
        hide_index=True,
        key="ov_recent",
        column_config={
            "created_at": st.column_config.DatetimeColumn("written", format="YYYY-MM-DD HH:mm:ss")
        },
    )
    failed = search_graphs(status="failed", limit=RECENT)
    st.subheader(f"Failures ({int(stats['graphs_failed'].sum()):,})")
    if failed.empty:
        st.success("No failed prompts.", icon=":material/check_circle:")
    else:
        st.dataframe(
            failed[["created_at", "prompt", "transcoder_uid", "error"]],
            hide_index=True,
            key="ov_failed",
            column_config={"error": st.column_config.TextColumn("error", width="large")},
        )


run_page(render)
