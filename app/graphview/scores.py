"""Replacement and completeness scores of a stored graph, computed from its own edges: for
imported graphs whose file carries none. Same definitions as circuitmap.pruning (circuit-tracer's),
but on the edges that were stored, so on the pruned graph when the graph was pruned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from circuitmap.pruning import normalize, propagate


@dataclass(frozen=True)
class GraphScores:
    replacement: float
    completeness: float


def scores_from_edges(nodes: pd.DataFrame, edges: pd.DataFrame) -> GraphScores | None:
    """Scores from the graph's edges, the logits weighted by their probabilities; None when the
    graph has no logit with a probability or no edge."""
    index = pd.Index(nodes["node_id"])
    source = index.get_indexer(edges["source"])
    target = index.get_indexer(edges["target"])
    known = (source >= 0) & (target >= 0)
    kinds = nodes["kind"].to_numpy()
    weights = np.where(kinds == "logit", nodes["probability"].fillna(0.0).to_numpy(float), 0.0)
    if not known.any() or weights.sum() <= 0:
        return None
    n = len(nodes)
    matrix = torch.zeros((n, n), dtype=torch.float64)
    matrix.index_put_(
        (torch.from_numpy(target[known]), torch.from_numpy(source[known])),
        torch.from_numpy(edges["weight"].to_numpy(float)[known]),
        accumulate=True,
    )
    a_hat = normalize(matrix)
    w = torch.from_numpy(weights)
    node_influence = propagate(a_hat, w).numpy()
    is_error, is_token = kinds == "error", kinds == "token"
    token, error = node_influence[is_token].sum(), node_influence[is_error].sum()
    replacement = token / (token + error) if token + error > 0 else float("nan")
    from_errors = a_hat[:, torch.from_numpy(is_error)].sum(dim=1).numpy()
    has_inputs = a_hat.sum(dim=1).numpy() > 0
    non_error = np.where(has_inputs, 1.0 - from_errors, 1.0)
    output_weight = node_influence + weights
    completeness = (non_error * output_weight).sum() / output_weight.sum()
    return GraphScores(float(replacement), float(completeness))
