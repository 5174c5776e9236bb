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


def normalize(
    matrix: torch.Tensor, keep: torch.Tensor | None = None, row_nodes: torch.Tensor | None = None
) -> torch.Tensor:
    """|matrix| with rows scaled to sum 1 (one new matrix); with `keep` ([N] bool per node),
    only the rows and columns of the kept nodes. Row i belongs to node `row_nodes[i]` when the
    matrix holds only some nodes' rows (default: one row per node)."""
    a = matrix.abs()
    if keep is not None:
        a[~(keep if row_nodes is None else keep[row_nodes])] = 0
        a[:, ~keep] = 0
    return a.div_(a.sum(dim=1, keepdim=True).clamp_(min=1e-10))


def propagate(
    a_hat: torch.Tensor, weights: torch.Tensor, row_nodes: torch.Tensor | None = None
) -> torch.Tensor:
    """sum_{k>=1} w . A_hat^k for a normalised matrix, `weights` given per row.

    Square matrices have a row per node. Otherwise row i belongs to node `row_nodes[i]` (a column
    index, or -1 for a node that is no column, like a logit), which is how influence is estimated
    from the rows computed so far."""
    return _propagate_with(lambda current: current @ a_hat, weights, a_hat.shape[1], row_nodes)


def _propagate_with(step, weights, n_cols: int, row_nodes) -> torch.Tensor:
    """`propagate` with the product by A_hat given as `step` (a vector per row -> per column)."""
    current = weights
    total = torch.zeros(n_cols, dtype=weights.dtype, device=weights.device)
    for _ in range(n_cols + 2):
        current = step(current)
        if not current.any():
            return total
        total += current
        if row_nodes is not None:
            current = torch.where(row_nodes >= 0, current[row_nodes.clamp(min=0)], 0.0)
    raise RuntimeError("influence did not converge: the graph has a cycle")


def influence(
    matrix: torch.Tensor | list[torch.Tensor],
    weights: torch.Tensor,
    row_nodes: torch.Tensor | None = None,
    chunk_rows: int | None = None,
) -> torch.Tensor:
    """Influence on the logits of every node (see `propagate`) for an unnormalised matrix, or
    its rows given as a list of blocks (concatenated in order). No normalised copy is formed:
    each step normalises `chunk_rows` rows at a time (default: 16M values; the same values
    `normalize` gives), so the extra memory is one chunk, not a second matrix."""
    blocks = [matrix] if isinstance(matrix, torch.Tensor) else matrix
    chunk_rows = chunk_rows or max(1, (1 << 24) // max(1, blocks[0].shape[1]))
    pieces = [b[i : i + chunk_rows] for b in blocks for i in range(0, len(b), chunk_rows)]
    sums = [p.abs().sum(dim=1, keepdim=True).clamp_(min=1e-10) for p in pieces]
    starts = [0]
    for p in pieces:
        starts.append(starts[-1] + len(p))

    def step(current: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(pieces[0].shape[1], dtype=pieces[0].dtype, device=pieces[0].device)
        for p, s, lo, hi in zip(pieces, sums, starts, starts[1:], strict=False):
            if current[lo:hi].any():
                out += current[lo:hi] @ p.abs().div_(s)
        return out

    return _propagate_with(step, weights, pieces[0].shape[1], row_nodes)


def find_threshold(scores: torch.Tensor, fraction: float, chunk: int = 1 << 24) -> torch.Tensor:
    """The largest score s such that the scores >= s hold `fraction` of the total, i.e. the score
    at which the descending cumulative sum first reaches `fraction`.

    Instead of sorting every score, scores are bucketed by binary exponent (one pass); only the
    bucket where the cumulative share crosses `fraction` is sorted. The passes go over `chunk`
    scores at a time, so a graph's edge scores need no second copy."""
    flat = scores.reshape(-1)
    pieces = [flat[i : i + chunk] for i in range(0, flat.numel(), chunk)]
    positives = [p[p > 0] for p in pieces] if len(pieces) == 1 else None

    def positive(i: int) -> torch.Tensor:
        return positives[i] if positives is not None else pieces[i][pieces[i] > 0]

    counts, tops, total = 0, [], 0.0
    for i in range(len(pieces)):
        p = positive(i)
        if p.numel():
            counts += p.numel()
            tops.append(int(torch.frexp(p).exponent.max()))
            total += p.sum(dtype=torch.float64)
    if counts == 0:
        return scores.new_tensor(0.0)
    top = max(tops)
    sums = torch.zeros(0, dtype=torch.float64, device=scores.device)
    for i in range(len(pieces)):
        p = positive(i)
        if p.numel():
            part = torch.bincount(top - torch.frexp(p).exponent, weights=p.double())
            if len(part) > len(sums):
                part[: len(sums)] += sums
                sums = part
            else:
                sums[: len(part)] += part
    cumulative = sums.cumsum(0) / total
    b = min(int(torch.searchsorted(cumulative, fraction)), len(sums) - 1)
    before = float(cumulative[b - 1]) * float(total) if b > 0 else 0.0
    in_bucket = []
    for i in range(len(pieces)):
        p = positive(i)
        in_bucket.append(p[(top - torch.frexp(p).exponent) == b])
    ranked = torch.cat(in_bucket).sort(descending=True).values
    shares = (before + ranked.double().cumsum(0)) / total
    index = int(torch.searchsorted(shares, fraction))
    if index < ranked.numel():
        return ranked[index]
    # Past the last positive score (fraction 1 up to rounding): keep zeros too, as a sort would.
    return scores.new_tensor(0.0) if counts < flat.numel() else ranked[-1]


@dataclass
class PruneResult:
    node_mask: torch.Tensor  # [N] bool
    edge_rows: torch.Tensor  # [k + m, N] bool: kept edges into each row's node (graph.rows)
    row_nodes: torch.Tensor  # [k + m] the node of each row
    node_influence: torch.Tensor  # [N] influence on the logits (unpruned graph)
    cumulative_scores: torch.Tensor  # [N] cumulative influence fraction at each node's rank
    replacement_score: float  # of the unpruned graph
    completeness_score: float

    @property
    def edge_mask(self) -> torch.Tensor:
        """[N, N] bool, [target, source]: the kept edges as a dense matrix (a new tensor)."""
        n = self.node_mask.shape[0]
        dense = torch.zeros(n, n, dtype=torch.bool)
        dense[self.row_nodes] = self.edge_rows
        return dense

    def edges(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, targets, sources) of the kept edges, ordered by target then source; `rows`
        index `graph.rows`, targets and sources are node indices."""
        rows, sources = self.edge_rows.nonzero(as_tuple=True)
        return rows, self.row_nodes[rows], sources


def prune(
    graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98
) -> PruneResult:
    """Pruned node and edge masks, and the unpruned graph's scores (sharing the work). Works on
    the graph's rows (feature and logit nodes): no [N, N] matrix is formed."""
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    rows, row_nodes = graph.rows, graph.row_nodes.to(graph.rows.device)
    weights = graph.logit_weights().to(rows.device)
    row_weights = weights[row_nodes]
    fixed = graph.token_offset  # tokens and logits start here: always kept
    k = graph.n_features

    a_hat = normalize(rows)
    node_influence = propagate(a_hat, row_weights, row_nodes)
    replacement, completeness = _scores(graph, a_hat, node_influence, weights)
    del a_hat
    node_mask = node_influence >= find_threshold(node_influence, node_threshold)
    node_mask[fixed:] = True

    edge_scores = normalize(rows, keep=node_mask, row_nodes=row_nodes)
    pruned_influence = propagate(edge_scores, row_weights, row_nodes)
    edge_scores.mul_((pruned_influence + weights)[row_nodes][:, None])
    edge_rows = edge_scores >= find_threshold(edge_scores.flatten(), edge_threshold)
    del edge_scores

    while True:
        before = node_mask.clone()
        edge_rows &= node_mask[row_nodes][:, None] & node_mask[None, :]
        node_mask[:fixed] &= edge_rows[:, :fixed].any(0)  # features and errors need an output
        node_mask[:k] &= edge_rows[:k].any(1)  # features need an input (rows 0..k-1)
        if torch.equal(node_mask, before):
            break

    ranked, order = node_influence.sort(descending=True)
    cumulative = torch.empty_like(node_influence)
    cumulative[order] = ranked.cumsum(0) / ranked.sum()
    return PruneResult(
        node_mask, edge_rows, row_nodes, node_influence, cumulative, replacement, completeness
    )


def graph_scores(graph: AttributionGraph) -> tuple[float, float]:
    """(replacement score, completeness score) of the unpruned graph."""
    row_nodes = graph.row_nodes.to(graph.rows.device)
    weights = graph.logit_weights().to(graph.rows.device)
    a_hat = normalize(graph.rows)
    return _scores(graph, a_hat, propagate(a_hat, weights[row_nodes], row_nodes), weights)


def _scores(graph, a_hat, node_influence, weights) -> tuple[float, float]:
    """Scores from the normalised rows `a_hat` (one per feature and logit node; the other
    nodes have no inputs, so nothing of theirs is error)."""
    errors = slice(graph.error_offset, graph.token_offset)
    tokens = slice(graph.token_offset, graph.logit_offset)
    token_influence = node_influence[tokens].sum()
    error_influence = node_influence[errors].sum()
    replacement = token_influence / (token_influence + error_influence)
    non_error = torch.ones_like(node_influence)
    non_error[graph.row_nodes.to(a_hat.device)] = 1 - a_hat[:, errors].sum(dim=1)
    output_weight = node_influence + weights
    completeness = (non_error * output_weight).sum() / output_weight.sum()
    return float(replacement), float(completeness)
