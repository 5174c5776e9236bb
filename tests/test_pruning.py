"""Pruning and graph scores against their definitions on small graphs."""

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
    clean = AttributionGraph(**{**graph.__dict__, "adjacency": graph.adjacency.clone()})
    clean.adjacency[:, clean.error_offset : clean.token_offset] = 0
    assert graph_scores(clean) == (1.0, 1.0)
