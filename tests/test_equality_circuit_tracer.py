"""circuitmap's attribution graphs equal circuit-tracer 0.5.0's (issue 3, item 8).

A tiny Llama with a CLT and with a per-layer transcoder set, written in circuit-tracer's formats;
the same prompts through both tools, each in its own process (circuit-tracer under `.venv-peer`,
which `make test` creates: its pins conflict with ours). Same tokens, logit tokens, active and
selected features; edge weights within 1e-4 of the largest edge (`bench/equality.py`).
The per-layer case has a skip connection and caps the feature nodes, so circuit-tracer's skip path
and its influence-ordered selection of features are compared too. Without `.venv-peer` the test is
skipped, except under CI=true where it fails.

Beside Llama, the other families circuit-tracer's nnsight backend maps: Gemma-2 (its CLT-style
sites: the residual stream before the pre-MLP norm or the normalised MLP input without the norm's
weight, as GemmaScope reads, to the MLP output after post_feedforward_layernorm) and Qwen3 (the
MLP's input and output); and, on its TransformerLens backend, GPT-2 and Qwen2. All on tiny models
saved with a word-level tokenizer (`tests/tiny_models.py`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.attribution import PEER_PYTHON, RunSettings, ToolRun, check, run_tools
from bench.fixtures import World, WorldSpec, build_world
from tests.tiny_models import PeerCase, build_peer_world


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
    assert_equal_graphs(world, *run_tools(world, settings, tmp_path / "run"), min_edges=1000)


def assert_equal_graphs(world: World, ours: ToolRun, peer: ToolRun, min_edges: int) -> None:
    """Same tokens, logits, active and selected features; edges within 1e-4 of the largest."""
    results = check(world, ours, peer)
    assert len(results) == len(world.prompts) == 2
    for prompt, result in zip(world.prompts, results, strict=True):
        assert result["same_tokens"] and result["same_logits"], prompt
        assert result["same_active_features"], result["feature_diff"]
        assert result["same_selected_features"], result["feature_diff"]
        assert result["n_edges"] > min_edges  # a real graph, not an empty one
        assert result["rel_max"] <= 1e-4, result["worst_edge"]
        assert result["activation_rel_max"] <= 1e-5
        assert result["prob_max_abs"] <= 1e-6


PEER_CASES = [
    PeerCase("gemma2", "clt", "resid_mid", "mlp_out_post_norm"),
    PeerCase("gemma2", "plt", "mlp_in_unweighted", "mlp_out_post_norm"),
    PeerCase("qwen3", "plt", "mlp_in", "mlp_out"),
    PeerCase("qwen3", "clt", "mlp_in", "mlp_out"),
    # TransformerLens backend (circuit-tracer's nnsight one does not map these architectures).
    PeerCase("gpt2", "clt", "resid_mid", "mlp_out"),
    PeerCase("qwen2", "plt", "mlp_in", "mlp_out"),
]


@pytest.mark.parametrize("case", PEER_CASES, ids=lambda c: c.name)
def test_other_families_equal_circuit_tracer(tmp_path, peer_python, case):
    world = build_peer_world(case, tmp_path / "world")
    settings = RunSettings(batch_size=32, peer_python=peer_python)
    assert_equal_graphs(world, *run_tools(world, settings, tmp_path / "run"), min_edges=1000)
