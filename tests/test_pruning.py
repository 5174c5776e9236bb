"""Pruning and graph scores against their definitions on small graphs."""

import pytest
import torch

from circuitmap.attribution import AttributionGraph, attribute
from circuitmap.models import tokenize
from circuitmap.pruning import find_threshold, graph_scores, influence, normalize, prune
from circuitmap.replacement import ReplacementModel
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder


def small_graph() -> AttributionGraph:
    rm = ReplacementModel(tiny_model("llama"), tiny_transcoder("clt"))
    ids = tokenize(tiny_tokenizer(), "the capital of the state containing dallas is")
    return attribute(rm, ids)


def test_influence_equals_matrix_inverse_definition():
    graph = small_graph()
    a_hat = normalize(graph.adjacency).double()
    eye = torch.eye(a_hat.shape[0], dtype=torch.float64)
    b = torch.linalg.inv(eye - a_hat) - eye
    weights = graph.logit_weights()
    expected = weights.double() @ b
    torch.testing.assert_close(
        influence(graph.adjacency, weights).double(), expected, rtol=1e-4, atol=1e-7
    )


def test_find_threshold_keeps_requested_share():
    scores = torch.rand(1000) ** 4
    scores[::7] = 0
    for fraction in (0.5, 0.8, 0.98):
        threshold = find_threshold(scores, fraction)
        ranked = scores.sort(descending=True).values
        cumulative = ranked.cumsum(0) / ranked.sum()
        assert threshold == ranked[int((cumulative < fraction).sum())]
        kept = scores[scores >= threshold].sum() / scores.sum()
        assert kept >= fraction


def test_prune_keeps_tokens_logits_and_connected_nodes():
    graph = small_graph()
    result = prune(graph, node_threshold=0.8, edge_threshold=0.98)
    nodes, edges = result.node_mask, result.edge_mask
    assert nodes[graph.token_offset :].all()
    assert nodes[: graph.token_offset].sum() < graph.token_offset  # something was pruned
    assert not edges[~nodes].any() and not edges[:, ~nodes].any()
    kept_sources = nodes.clone()
    kept_sources[graph.token_offset :] = False
    assert edges.any(0)[kept_sources].all()  # kept features and errors have outputs
    features = nodes[: graph.n_features]
    assert edges[: graph.n_features].any(1)[features].all()  # kept features have inputs
    assert edges.sum() < (graph.adjacency != 0).sum()
    # Everything kept at thresholds 1.
    everything = prune(graph, 1.0, 1.0)
    assert everything.node_mask.sum() >= nodes.sum()
    ranked = result.cumulative_scores[result.node_influence.argsort(descending=True)]
    assert (ranked.diff() >= -1e-6).all() and abs(ranked[-1] - 1) < 1e-5


def test_scores_match_definitions():
    graph = small_graph()
    replacement, completeness = graph_scores(graph)
    assert 0 < replacement < 1 and 0 < completeness < 1
    # Without error edges the graph is complete and fully replaced.
    clean = AttributionGraph(**{**graph.__dict__, "rows": graph.rows.clone()})
    clean.rows[:, clean.error_offset : clean.token_offset] = 0
    assert graph_scores(clean) == (1.0, 1.0)


def reference_prune(graph, node_threshold, edge_threshold):
    """The definitions written plainly: inverse for influence, full sorts for thresholds."""
    n = graph.n_nodes
    w = graph.logit_weights().double()
    eye = torch.eye(n, dtype=torch.float64)

    def infl(matrix):
        a = matrix.abs().double()
        a = a / a.sum(1, keepdim=True).clamp(min=1e-10)
        return a, w @ (torch.linalg.inv(eye - a) - eye)

    def threshold(scores, fraction):
        ranked = scores.flatten().sort(descending=True).values
        cumulative = ranked.cumsum(0) / ranked.sum()
        return ranked[min(int((cumulative < fraction).sum()), len(ranked) - 1)]

    _, node_infl = infl(graph.adjacency)
    nodes = node_infl >= threshold(node_infl, node_threshold)
    nodes[graph.token_offset :] = True
    pruned = graph.adjacency * nodes[:, None] * nodes[None, :]
    a, pruned_infl = infl(pruned)
    edges = a * (pruned_infl + w)[:, None]
    edges = edges >= threshold(edges, edge_threshold)
    while True:
        before = nodes.clone()
        edges &= nodes[:, None] & nodes[None, :]
        nodes[: graph.token_offset] &= edges[:, : graph.token_offset].any(0)
        nodes[: graph.n_features] &= edges[: graph.n_features].any(1)
        if torch.equal(nodes, before):
            return nodes, edges


def test_prune_matches_reference_definition():
    graph = small_graph()
    for node_threshold, edge_threshold in [(0.8, 0.98), (0.5, 0.9), (0.95, 0.7)]:
        result = prune(graph, node_threshold, edge_threshold)
        nodes, edges = reference_prune(graph, node_threshold, edge_threshold)
        assert torch.equal(result.node_mask, nodes)
        assert torch.equal(result.edge_mask, edges)
    assert (result.replacement_score, result.completeness_score) == pytest.approx(
        graph_scores(graph)
    )
