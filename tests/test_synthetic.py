"""Synthetic graphs: deterministic, valid, causal, of the requested size, sharing features."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from circuitmap.synthetic import (
    SyntheticConfig,
    SyntheticGraphs,
    synthetic_graph,
    synthetic_prompts,
)


def test_synthetic_graphs_are_valid_causal_and_deterministic() -> None:
    config = SyntheticConfig(n_features=300, n_edges=20_000)
    prompt = "the capital of the state containing dallas is"
    graph = synthetic_graph(prompt, config, answer="austin")
    graph.validate()
    again = synthetic_graph(prompt, config, answer="austin")
    assert [n.node_id for n in graph.nodes] == [n.node_id for n in again.nodes]
    assert np.array_equal(graph.edge_weight, again.edge_weight)
    kinds = Counter(n.kind for n in graph.nodes)
    assert kinds["feature"] == 300 and kinds["token"] == len(prompt.split()) + 1
    assert 1 <= kinds["logit"] <= 10 and kinds["error"] >= config.n_layers
    assert graph.n_edges == 20_000
    logits = [n for n in graph.nodes if n.kind == "logit"]
    assert logits[0].token == "austin" and sum(n.probability for n in logits) <= 1.0
    layer = np.array([n.layer for n in graph.nodes])
    pos = np.array([n.position for n in graph.nodes])
    s, t = graph.edge_source, graph.edge_target
    assert (layer[s] < layer[t]).all() and (pos[s] <= pos[t]).all()
    assert len(set(zip(s.tolist(), t.tolist(), strict=True))) == graph.n_edges


def test_features_recur_across_graphs_and_long_prompts_fail() -> None:
    rows = synthetic_prompts(30, seed=1)
    assert {r["tags"][0] for r in rows} == {"two-hop", "one-hop", "addition"}
    graphs = SyntheticGraphs(config=SyntheticConfig(n_features=100, n_edges=1000))
    seen = Counter()
    for row in rows:
        seen.update({n.node_id.rsplit("_", 1)[0] for n in graphs(row["text"]).nodes})
    assert max(seen.values()) >= 10  # some (layer, index) appear in a third of the graphs
    try:
        graphs(" ".join(["x"] * 100))
    except ValueError as error:
        assert "more than the maximum" in str(error)
    else:
        raise AssertionError("an over-long prompt was accepted")


def test_influence_is_a_cumulative_share_as_the_pipeline_writes_it() -> None:
    """Tokens, features, errors: cumulative shares in (0, 1] (smaller = more influential, the last
    ranked node holds 1); logits: no influence, only their probability (circuitmap.pipeline)."""
    graph = synthetic_graph("the capital of texas is", SyntheticConfig(n_features=50, n_edges=500))
    ranked = [n.influence for n in graph.nodes if n.kind != "logit"]
    shares = np.sort(np.array(ranked))
    assert shares[0] > 0 and shares[-1] == pytest.approx(1.0)
    assert (np.diff(shares) > 0).all()  # each rank adds its node's positive share
    assert {n.kind for n in graph.nodes if n.influence is not None} == {"token", "feature", "error"}
    assert all(n.influence is None and n.probability > 0 for n in graph.nodes if n.kind == "logit")
