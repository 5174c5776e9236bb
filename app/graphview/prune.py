"""The view's pruning-threshold control, with Neuronpedia's meaning.

A node's `influence` follows the Neuronpedia / circuit-tracer convention (circuitmap.pipeline):
the cumulative share of the total logit influence held by the nodes ranked up to and including it,
so small means influential. Keeping the nodes with influence <= t keeps the most influential nodes
that together hold a share t of the influence. Tokens and logits always stay; nodes without an
influence (some imported graphs) stay too."""

from __future__ import annotations

import pandas as pd

from app.graphview.frames import among

ALWAYS_KEPT = ("token", "logit")


def prune_by_influence(
    nodes: pd.DataFrame, edges: pd.DataFrame, threshold: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes within the threshold and the edges between them; a threshold of 1 keeps everything."""
    if not 0 < threshold <= 1:
        raise ValueError(f"pruning threshold must be in (0, 1], got {threshold}")
    if threshold >= 1:
        return nodes, edges
    influence = nodes["influence"]
    keep = among(nodes["kind"], ALWAYS_KEPT) | influence.isna() | (influence <= threshold)
    kept = nodes[keep]
    ids = kept["node_id"]
    kept_edges = edges[among(edges["source"], ids) & among(edges["target"], ids)]
    return kept.reset_index(drop=True), kept_edges.reset_index(drop=True)


def threshold_for(nodes: pd.DataFrame, max_nodes: int) -> float:
    """The largest threshold that shows at most `max_nodes` nodes (at least 0.01)."""
    fixed = among(nodes["kind"], ALWAYS_KEPT) | nodes["influence"].isna()
    values = nodes.loc[~fixed, "influence"].sort_values().to_numpy()
    budget = max_nodes - int(fixed.sum())
    if budget >= len(values):
        return 1.0
    if budget <= 0:
        return 0.01
    return max(0.01, float(values[budget]) - 1e-6)
