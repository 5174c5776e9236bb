"""circuitmap's attribution graphs equal circuit-tracer 0.5.0's (issue 3, item 8).

A tiny Llama with a CLT and with a per-layer transcoder set, written in circuit-tracer's formats;
the same prompts through both tools, each in its own process (circuit-tracer under `.venv-peer`,
which `make test` creates: its pins conflict with ours). Same tokens, logit tokens, active and
selected features; edge weights within 1e-4 of the largest edge (`bench/equality.py`).
The per-layer case has a skip connection and caps the feature nodes, so circuit-tracer's skip path
and its influence-ordered selection of features are compared too. Without `.venv-peer` the test is
skipped, except under CI=true where it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.attribution import PEER_PYTHON, RunSettings, check, run_tools
from bench.fixtures import WorldSpec, build_world


@pytest.fixture(scope="module")
def peer_python() -> Path:
    if not PEER_PYTHON.exists():
        message = f"{PEER_PYTHON} missing: run `make peer-venv`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return PEER_PYTHON


@pytest.mark.parametrize(
    ("kind", "skip", "max_feature_nodes"),
    [("clt", False, None), ("plt", True, 100)],
)
def test_graphs_equal_circuit_tracer(tmp_path, peer_python, kind, skip, max_feature_nodes):
    spec = WorldSpec(
        "tiny", n_layers=3, d_model=64, n_features=512, kind=kind, skip=skip, prompt_lengths=(5, 12)
    )
    world = build_world(spec, tmp_path / "world", n_prompts_per_length=1)
    settings = RunSettings(
        batch_size=32, max_feature_nodes=max_feature_nodes, peer_python=peer_python
    )
    ours, peer = run_tools(world, settings, tmp_path / "run")
    results = check(world, ours, peer)
    assert len(results) == 2
    for prompt, result in zip(world.prompts, results, strict=True):
        assert result["same_tokens"] and result["same_logits"], prompt
        assert result["same_active_features"], result["feature_diff"]
        assert result["same_selected_features"], result["feature_diff"]
        assert result["n_edges"] > 1000  # a real graph, not an empty one
        assert result["rel_max"] <= 1e-4, result["worst_edge"]
        assert result["activation_rel_max"] <= 1e-5
        assert result["prob_max_abs"] <= 1e-6
