"""The view's pruning-threshold control: keep the feature and error nodes that hold a given share
of the graph's node influence (tokens and logits always stay), as circuit-tracer prunes."""

from __future__ import annotations

import numpy as np
import pandas as pd

ALWAYS_KEPT = ("token", "logit")


def prune_by_influence(
    nodes: pd.DataFrame, edges: pd.DataFrame, threshold: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes holding `threshold` of the cumulative influence, and the edges between kept nodes.

    A threshold >= 1 keeps everything. Nodes without an influence (some imported graphs) count as
    zero, so they go first; if no node has one, nothing is pruned.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"pruning threshold must be in (0, 1], got {threshold}")
    prunable = ~nodes["kind"].isin(ALWAYS_KEPT)
    influence = nodes["influence"].abs().fillna(0.0).to_numpy()
    total = influence[prunable.to_numpy()].sum()
    if threshold >= 1 or total <= 0:
        return nodes, edges
    idx = np.flatnonzero(prunable.to_numpy())
    order = idx[np.argsort(-influence[idx], kind="stable")]
    cumulative = np.cumsum(influence[order]) / total
    n_keep = int(np.searchsorted(cumulative, threshold - 1e-12) + 1)
    keep = ~prunable.to_numpy()
    keep[order[:n_keep]] = True
    kept = nodes[keep]
    ids = set(kept["node_id"])
    kept_edges = edges[edges["source"].isin(ids) & edges["target"].isin(ids)]
    return kept.reset_index(drop=True), kept_edges.reset_index(drop=True)
