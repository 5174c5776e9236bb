"""Corpus-aware reads for the dashboard's navigation: top predictions, the catalogue cards of a
graph's features (hover cards), the graphs a supernode appears in, a feature's input tokens."""

from __future__ import annotations

import pandas as pd

from app.data import run


def top_predictions(graph_uids: list[str]) -> pd.DataFrame:
    """graph_uid, top_token, top_probability, answer, correct (None without an answer)."""
    if not graph_uids:
        return pd.DataFrame(
            columns=["graph_uid", "top_token", "top_probability", "answer", "correct"]
        )
    return run.frame("graph_top_predictions", graphs=list(graph_uids))


def catalogue_cards(graph_uid: str) -> pd.DataFrame:
    """One row per catalog feature of the graph: label, top contexts, logit effects."""
    return run.frame("graph_catalogue_cards", graph=graph_uid)


def supernode_graphs(name: str, limit: int = 200) -> pd.DataFrame:
    return run.frame("supernode_graphs", supernode=name, limit=limit)


def token_inputs(feature_uid: str, limit: int = 20) -> pd.DataFrame:
    return run.frame("feature_token_inputs", feature=feature_uid, limit=limit)


def appearances(
    feature_uid: str, order_by: str = "activation", tag: str | None = None, limit: int = 100
) -> pd.DataFrame:
    """A feature's instances in complete graphs, of prompts with `tag` when given."""
    return run.frame(
        "feature_prompts", feature=feature_uid, order_by=order_by, tag=tag, limit=limit
    )


def graphs_containing(feature: str | None = None, supernode: str | None = None) -> pd.DataFrame:
    """graph_uid, matched: graphs with a node of the feature, or of the supernode's members."""
    return run.frame("graphs_containing", feature=feature, supernode=supernode)
