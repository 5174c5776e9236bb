"""Pruning by influence on the logits, and the replacement and completeness scores.

Definitions follow circuit-tracer 0.5.0's graph.py (and the methods paper):
- A_hat = |A| with rows normalised to sum 1 (A is [target, source]).
- influence = w . (A_hat + A_hat^2 + ...) = w . ((I - A_hat)^-1 - I), w = logit probabilities on
  the logit nodes. Computed as repeated vector-matrix products, which end after at most the
  graph's depth because attribution graphs are acyclic (no inverse is formed).
- Nodes: keep those holding `node_threshold` of the cumulative influence (tokens and logits
  always). Edges: on the node-pruned graph, score A_hat'[t, s] * (influence'(t) + w(t)) and keep
  `edge_threshold` of the cumulative score. Then repeatedly drop feature/error nodes left without
  outgoing edges and features without incoming edges.
- replacement score = token influence / (token + error influence);
  completeness = sum over nodes of (1 - error share of the node's normalised inputs) weighted by
  (influence + w), divided by the total weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from circuitmap.attribution import AttributionGraph


def normalize(matrix: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """|matrix| with rows scaled to sum 1 (one new matrix); with `keep`, only the rows and
    columns of the kept nodes."""
    a = matrix.abs()
    if keep is not None:
        a[~keep] = 0
        a[:, ~keep] = 0
    return a.div_(a.sum(dim=1, keepdim=True).clamp_(min=1e-10))


def propagate(
    a_hat: torch.Tensor, weights: torch.Tensor, row_nodes: torch.Tensor | None = None
) -> torch.Tensor:
    """sum_{k>=1} w . A_hat^k for a normalised matrix, `weights` given per row.

    Square matrices have a row per node. Otherwise row i belongs to node `row_nodes[i]` (a column
    index, or -1 for a node that is no column, like a logit), which is how influence is estimated
    from the rows computed so far."""
    current = weights
    total = torch.zeros(a_hat.shape[1], dtype=a_hat.dtype, device=a_hat.device)
    for _ in range(a_hat.shape[1] + 2):
        current = current @ a_hat
        if not current.any():
            return total
        total += current
        if row_nodes is not None:
            current = torch.where(row_nodes >= 0, current[row_nodes.clamp(min=0)], 0.0)
    raise RuntimeError("influence did not converge: the graph has a cycle")


def influence(
    matrix: torch.Tensor, weights: torch.Tensor, row_nodes: torch.Tensor | None = None
) -> torch.Tensor:
    """Influence on the logits of every node (see `propagate`) for an unnormalised matrix."""
    return propagate(normalize(matrix), weights, row_nodes)


def find_threshold(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """The largest score s such that the scores >= s hold `fraction` of the total, i.e. the score
    at which the descending cumulative sum first reaches `fraction`.

    Instead of sorting every score, scores are bucketed by binary exponent (one pass); only the
    bucket where the cumulative share crosses `fraction` is sorted."""
    positive = scores[scores > 0]
    if positive.numel() == 0:
        return scores.new_tensor(0.0)
    total = positive.sum(dtype=torch.float64)
    exponent = torch.frexp(positive).exponent
    bucket = (exponent.max() - exponent).long()  # 0 holds the largest scores
    sums = torch.bincount(bucket, weights=positive.double())
    cumulative = sums.cumsum(0) / total
    b = min(int(torch.searchsorted(cumulative, fraction)), len(sums) - 1)
    before = float(cumulative[b - 1]) * float(total) if b > 0 else 0.0
    ranked = positive[bucket == b].sort(descending=True).values
    shares = (before + ranked.double().cumsum(0)) / total
    index = int(torch.searchsorted(shares, fraction))
    if index < ranked.numel():
        return ranked[index]
    # Past the last positive score (fraction 1 up to rounding): keep zeros too, as a sort would.
    return scores.new_tensor(0.0) if positive.numel() < scores.numel() else ranked[-1]


@dataclass
class PruneResult:
    node_mask: torch.Tensor  # [N] bool
    edge_mask: torch.Tensor  # [N, N] bool, [target, source]
    node_influence: torch.Tensor  # [N] influence on the logits (unpruned graph)
    cumulative_scores: torch.Tensor  # [N] cumulative influence fraction at each node's rank
    replacement_score: float  # of the unpruned graph
    completeness_score: float


def prune(
    graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98
) -> PruneResult:
    """Pruned node and edge masks, and the unpruned graph's scores (sharing the work)."""
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    adjacency = graph.adjacency
    weights = graph.logit_weights().to(adjacency.device)
    fixed = graph.token_offset  # tokens and logits start here: always kept
    k = graph.n_features

    a_hat = normalize(adjacency)
    node_influence = propagate(a_hat, weights)
    replacement, completeness = _scores(graph, a_hat, node_influence, weights)
    del a_hat
    node_mask = node_influence >= find_threshold(node_influence, node_threshold)
    node_mask[fixed:] = True

    edge_scores = normalize(adjacency, keep=node_mask)
    edge_scores.mul_((propagate(edge_scores, weights) + weights)[:, None])
    edge_mask = edge_scores >= find_threshold(edge_scores.flatten(), edge_threshold)
    del edge_scores

    while True:
        before = node_mask.clone()
        edge_mask &= node_mask[:, None] & node_mask[None, :]
        node_mask[:fixed] &= edge_mask[:, :fixed].any(0)  # features and errors need an output
        node_mask[:k] &= edge_mask[:k].any(1)  # features need an input
        if torch.equal(node_mask, before):
            break

    ranked, order = node_influence.sort(descending=True)
    cumulative = torch.empty_like(node_influence)
    cumulative[order] = ranked.cumsum(0) / ranked.sum()
    return PruneResult(node_mask, edge_mask, node_influence, cumulative, replacement, completeness)


def graph_scores(graph: AttributionGraph) -> tuple[float, float]:
    """(replacement score, completeness score) of the unpruned graph."""
    weights = graph.logit_weights().to(graph.adjacency.device)
    a_hat = normalize(graph.adjacency)
    return _scores(graph, a_hat, propagate(a_hat, weights), weights)


def _scores(graph, a_hat, node_influence, weights) -> tuple[float, float]:
    errors = slice(graph.error_offset, graph.token_offset)
    tokens = slice(graph.token_offset, graph.logit_offset)
    token_influence = node_influence[tokens].sum()
    error_influence = node_influence[errors].sum()
    replacement = token_influence / (token_influence + error_influence)
    non_error = 1 - a_hat[:, errors].sum(dim=1)
    output_weight = node_influence + weights
    completeness = (non_error * output_weight).sum() / output_weight.sum()
    return float(replacement), float(completeness)
