"""Interventions: a direct edge predicts a small constrained ablation exactly."""

import pytest
import torch

from circuitmap.attribution import attribute
from circuitmap.interventions import Intervention, intervene
from circuitmap.models import tokenize
from circuitmap.replacement import ReplacementModel
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder

PROMPT = "the capital of the state containing dallas is"


def setup(family="llama", kind="clt", **tc_options):
    rm = ReplacementModel(tiny_model(family), tiny_transcoder(kind, **tc_options))
    ids = tokenize(tiny_tokenizer(), PROMPT)
    run = rm.run(ids)
    return rm, run, attribute(rm, ids, run=run)


def preactivation(rm, run, layer, pos, index):
    tc = rm.transcoder
    return run.site_in[layer, pos] @ tc.W_enc[layer, index] + tc.b_enc[layer, index]


@pytest.mark.parametrize(
    ("family", "kind", "options"),
    [
        ("llama", "clt", {}),
        ("gpt2", "plt", {"skip": True}),
        ("gemma2", "clt", {"input_site": "mlp_in"}),
    ],
)
def test_direct_edge_predicts_constrained_ablation(family, kind, options):
    rm, run, graph = setup(family, kind, **options)
    k = graph.n_features
    block = graph.adjacency[:k, :k]
    target, source = divmod(int(block.abs().argmax()), k)
    src = graph.active_features[graph.selected_features[source]].tolist()
    tgt = graph.active_features[graph.selected_features[target]].tolist()
    small = Intervention(*src, scale=0.9)  # a 10% ablation of the source
    result = intervene(rm, run, [small], constrained_layers=range(graph.n_layers))
    change = result.pre_activations[tuple(tgt)] - preactivation(rm, run, *tgt)
    predicted = -0.1 * block[target, source]
    assert abs(predicted) > 1e-3
    torch.testing.assert_close(change, predicted, atol=1e-5, rtol=1e-4)
    assert result.activations[tuple(src)] == pytest.approx(
        0.9 * float(run.activations[tuple(src)]), rel=1e-6
    )


def test_direct_edge_predicts_logit_change():
    rm, run, graph = setup("gpt2", "clt")
    row = graph.adjacency[graph.logit_offset, : graph.n_features]
    source = int(row.abs().argmax())
    src = graph.active_features[graph.selected_features[source]].tolist()
    result = intervene(
        rm, run, [Intervention(*src, value=0.0)], constrained_layers=range(graph.n_layers)
    )
    delta = result.logits[-1] - run.logits[-1]
    change = delta[graph.logit_tokens[0]] - delta.mean()
    torch.testing.assert_close(change, -row[source], atol=1e-5, rtol=1e-4)


def test_no_op_interventions_leave_the_model_unchanged():
    rm, run, graph = setup("llama", "clt")
    feature = graph.active_features[0].tolist()
    for frozen in (True, False):
        same = intervene(rm, run, [Intervention(*feature, scale=1.0)], freeze_attention=frozen)
        torch.testing.assert_close(same.logits, run.logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(same.activations, run.activations, atol=1e-5, rtol=0)


def test_steering_changes_downstream_features_and_logits():
    rm, run, graph = setup("llama", "clt")
    last = graph.n_pos - 1
    feature = next(f for f in graph.active_features.tolist() if f[0] == 0 and f[1] == last)
    steered = intervene(rm, run, [Intervention(*feature, scale=-5.0)], freeze_attention=False)
    assert (steered.logits[-1] - run.logits[-1]).abs().max() > 1e-4
    assert (steered.activations[1:, last] - run.activations[1:, last]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="exactly one"):
        Intervention(0, 0, 0)
    with pytest.raises(ValueError, match="outside"):
        intervene(rm, run, [Intervention(0, 99, 0, value=1.0)])
