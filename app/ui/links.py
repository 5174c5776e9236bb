"""Links between pages, carrying what to open in the URL (so they work when shared, too)."""

from __future__ import annotations

import streamlit as st

PAGES = {
    "overview": "views/overview.py",
    "prompts": "views/prompts.py",
    "graph": "views/graph.py",
    "feature": "views/feature.py",
    "workbench": "views/workbench.py",
    "supernodes": "views/supernodes.py",
    "compare": "views/compare.py",
    "interventions": "views/interventions.py",
}


def feature_link(feature_uid: str, label: str | None = None) -> None:
    st.page_link(
        PAGES["feature"],
        label=label or f"Feature page: {feature_uid}",
        icon=":material/insights:",
        query_params={"feature": feature_uid},
    )


def graph_link(graph_uid: str, label: str | None = None, **extra: str) -> None:
    st.page_link(
        PAGES["graph"],
        label=label or "Open graph",
        icon=":material/account_tree:",
        query_params={"graph": graph_uid, **extra},
    )


def open_graph(graph_uid: str, **extra: str) -> None:
    """Go to the graph view of `graph_uid` (used from callbacks and buttons)."""
    st.switch_page(PAGES["graph"], query_params={"graph": graph_uid, **extra})


def open_feature(feature_uid: str) -> None:
    st.switch_page(PAGES["feature"], query_params={"feature": feature_uid})


def interventions_link(graph_uid: str, feature_node_ids: list[str]) -> None:
    st.page_link(
        PAGES["interventions"],
        label="Intervene on pinned features",
        icon=":material/tune:",
        query_params={"graph": graph_uid, "pin": ",".join(feature_node_ids)},
    )
