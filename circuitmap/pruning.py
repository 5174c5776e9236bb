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


def normalize(matrix: torch.Tensor) -> torch.Tensor:
    a = matrix.abs()
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-10)


def influence(
    matrix: torch.Tensor, weights: torch.Tensor, row_nodes: torch.Tensor | None = None
) -> torch.Tensor:
    """sum_{k>=1} w . A_hat^k for A_hat = normalize(matrix), `weights` given per row.

    Square matrices have a row per node. Otherwise row i belongs to node `row_nodes[i]` (a column
    index, or -1 for a node that is no column, like a logit), which is how influence is estimated
    from the rows computed so far."""
    a = normalize(matrix)
    current = weights
    total = torch.zeros(matrix.shape[1], dtype=matrix.dtype, device=matrix.device)
    for _ in range(matrix.shape[1] + 2):
        current = current @ a
        if not current.any():
            return total
        total += current
        if row_nodes is not None:
            current = torch.where(row_nodes >= 0, current[row_nodes.clamp(min=0)], 0.0)
    raise RuntimeError("influence did not converge: the graph has a cycle")


def find_threshold(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """The score above which (inclusive) `fraction` of the total score lies. Only positive scores
    are sorted: zeros add nothing to the cumulative sum."""
    positive = scores[scores > 0]
    if positive.numel() == 0:
        return scores.new_tensor(0.0)
    ranked = positive.sort(descending=True).values
    cumulative = ranked.cumsum(0) / ranked.sum()
    index = int(torch.searchsorted(cumulative, scores.new_tensor(fraction)))
    if index >= ranked.numel():
        return scores.new_tensor(0.0) if positive.numel() < scores.numel() else ranked[-1]
    return ranked[index]


@dataclass
class PruneResult:
    node_mask: torch.Tensor  # [N] bool
    edge_mask: torch.Tensor  # [N, N] bool, [target, source]
    node_influence: torch.Tensor  # [N] influence on the logits (unpruned graph)
    cumulative_scores: torch.Tensor  # [N] cumulative influence fraction at each node's rank


def prune(
    graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98
) -> PruneResult:
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    adjacency = graph.adjacency
    weights = graph.logit_weights().to(adjacency.device)
    fixed = graph.token_offset  # tokens and logits start here: always kept
    k = graph.n_features

    node_influence = influence(adjacency, weights)
    node_mask = node_influence >= find_threshold(node_influence, node_threshold)
    node_mask[fixed:] = True

    pruned = adjacency * node_mask[:, None] * node_mask[None, :]
    normalized = normalize(pruned)
    edge_scores = normalized * (influence(pruned, weights) + weights)[:, None]
    edge_mask = edge_scores >= find_threshold(edge_scores.flatten(), edge_threshold)

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
    return PruneResult(node_mask, edge_mask, node_influence, cumulative)


def graph_scores(graph: AttributionGraph) -> tuple[float, float]:
    """(replacement score, completeness score) of the unpruned graph."""
    adjacency = graph.adjacency
    weights = graph.logit_weights().to(adjacency.device)
    errors = slice(graph.error_offset, graph.token_offset)
    tokens = slice(graph.token_offset, graph.logit_offset)
    normalized = normalize(adjacency)
    node_influence = influence(adjacency, weights)
    token_influence = node_influence[tokens].sum()
    error_influence = node_influence[errors].sum()
    replacement = token_influence / (token_influence + error_influence)
    non_error = 1 - normalized[:, errors].sum(dim=1)
    output_weight = node_influence + weights
    completeness = (non_error * output_weight).sum() / output_weight.sum()
    return float(replacement), float(completeness)
