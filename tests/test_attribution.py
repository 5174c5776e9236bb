"""Attribution graphs: edges account exactly for each target's input, independent of batching."""

import pytest
import torch

from circuitmap.attribution import attribute
from circuitmap.models import Hooks, tokenize
from circuitmap.pruning import influence, normalize, propagate
from circuitmap.replacement import ReplacementModel
from tests.tiny_models import FAMILIES, tiny_model, tiny_tokenizer, tiny_transcoder, zero_constants

PROMPT = "the capital of the state containing dallas is"
CASES = [(f, k, ("resid_mid", "mlp_out")) for f in FAMILIES for k in ("clt", "plt")] + [
    (f, k, sites)
    for f, k in (("gpt2", "clt"), ("gemma2", "plt"))
    for sites in [("mlp_in", "mlp_out_post_norm"), ("mlp_in_unweighted", "mlp_out")]
]


def exact_setup(family, kind, sites):
    """A model and transcoder without constant terms, so edges must explain everything."""
    model = tiny_model(family)
    tc = tiny_transcoder(kind, skip=True, input_site=sites[0], output_site=sites[1])
    zero_constants(model, tc)
    # Position 0 kept: its MLP outputs would otherwise be constants outside the graph.
    rm = ReplacementModel(model, tc, zero_first_position=False)
    return rm, tokenize(tiny_tokenizer(), PROMPT)


@pytest.mark.parametrize(("family", "kind", "sites"), CASES)
def test_incoming_edges_sum_to_preactivation_and_logit(family, kind, sites):
    rm, ids = exact_setup(family, kind, sites)
    run = rm.run(ids)
    graph = attribute(rm, ids, batch_size=16, run=run)
    tc = rm.transcoder
    f = graph.active_features[graph.selected_features]
    assert graph.n_features > 20
    pre_minus_bias = (run.site_in[f[:, 0], f[:, 1]] * tc.W_enc[f[:, 0], f[:, 2]]).sum(-1)
    incoming = graph.adjacency[: graph.n_features].sum(1)
    torch.testing.assert_close(incoming, pre_minus_bias.detach(), atol=2e-5, rtol=1e-5)
    # Logit nodes: demeaned logit before any softcap = final-norm output . demeaned unembedding.
    w_u = rm.adapter.W_U
    final_out = run.norms[rm.adapter.final_norm].out[0, -1]
    demeaned = final_out @ (w_u[:, graph.logit_tokens] - w_u.mean(1, keepdim=True))
    torch.testing.assert_close(
        graph.adjacency[graph.logit_offset :].sum(1), demeaned, atol=2e-5, rtol=1e-5
    )


def test_layout_and_causality():
    rm, ids = exact_setup("llama", "clt", ("resid_mid", "mlp_out"))
    graph = attribute(rm, ids)
    L, n, k = graph.n_layers, graph.n_pos, graph.n_features
    assert graph.adjacency.shape == (graph.n_nodes, graph.n_nodes)
    assert graph.n_nodes == k + L * n + n + graph.n_logits
    assert 1 <= graph.n_logits <= 10
    # Only feature and logit rows; logits are never sources.
    assert graph.adjacency[graph.error_offset : graph.logit_offset].abs().sum() == 0
    assert graph.adjacency[:, graph.logit_offset :].abs().sum() == 0
    # A feature is reached only from earlier layers and positions.
    f = graph.active_features[graph.selected_features]
    later = (f[None, :, 0] >= f[:, None, 0]) | (f[None, :, 1] > f[:, None, 1])
    assert graph.adjacency[:k, :k][later].abs().sum() == 0


def test_edges_agree_across_batch_sizes():
    rm, ids = exact_setup("gemma2", "clt", ("resid_mid", "mlp_out"))
    run = rm.run(ids)
    small = attribute(rm, ids, batch_size=7, run=run).adjacency
    large = attribute(rm, ids, batch_size=512, run=run).adjacency
    torch.testing.assert_close(small, large, atol=1e-5, rtol=1e-5)


def test_feature_cap_keeps_most_influential_rows():
    rm = ReplacementModel(tiny_model("gpt2"), tiny_transcoder("clt"))
    ids = tokenize(tiny_tokenizer(), PROMPT)
    run = rm.run(ids)
    full = attribute(rm, ids, run=run)
    capped = attribute(rm, ids, max_feature_nodes=10, batch_size=4, update_interval=1, run=run)
    assert capped.n_features == 10
    assert torch.equal(capped.active_features, full.active_features)
    # Rows of the selected features equal the full graph's rows restricted to the kept columns.
    sel = capped.selected_features
    cols = torch.cat([sel, torch.arange(full.n_features, full.logit_offset)])
    torch.testing.assert_close(
        capped.adjacency[:10, : capped.logit_offset], full.adjacency[sel][:, cols]
    )
    # The first pick follows the logits' direct edges: the strongest direct feature is selected.
    direct = full.adjacency[full.logit_offset :, : full.n_features].abs()
    normalized = direct / full.adjacency[full.logit_offset :].abs().sum(1, keepdim=True)
    assert int((full.logit_probabilities @ normalized).argmax()) in sel.tolist()


@pytest.mark.parametrize("family", ["gemma2", "gpt2"])
def test_memory_saving_paths_give_the_same_graph(family):
    """The lean record (scales, last logits), smaller compute batches and the selection's
    block-wise rows and chunked influence leave the float32 graph as it was."""
    rm = ReplacementModel(tiny_model(family), tiny_transcoder("clt"))
    ids = tokenize(tiny_tokenizer(), PROMPT)
    full_run = rm.run(ids)
    lean_run = rm.run(ids, last_logits_only=True, lean=True)
    assert lean_run.logits.shape[0] == 1 and lean_run.lean and not full_run.lean
    torch.testing.assert_close(lean_run.logits[-1], full_run.logits[-1], atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="lean"):
        rm.freeze_norms(Hooks(), lean_run)
    settings = {"max_feature_nodes": 12, "batch_size": 4, "update_interval": 1}
    before = attribute(rm, ids, run=full_run, **settings)
    assert full_run.activations is not None  # a full run is left as it was
    for kwargs in ({"run": lean_run}, {"compute_batch_size": 1}, {}):
        after = attribute(rm, ids, **settings, **kwargs)
        assert torch.equal(after.selected_features, before.selected_features)
        assert torch.equal(after.logit_tokens, before.logit_tokens)
        torch.testing.assert_close(after.rows, before.rows, atol=1e-6, rtol=1e-5)
    assert lean_run.activations is None and lean_run.errors is None  # consumed, released


def test_influence_from_blocks_equals_the_normalised_matrix():
    gen = torch.Generator().manual_seed(0)
    rows = torch.randn(9, 30, generator=gen) * (torch.rand(9, 30, generator=gen) > 0.3)
    row_nodes = torch.tensor([-1, -1, 3, 7, 0, 12, 5, 20, 2])
    weights = torch.tensor([0.6, 0.4, 0, 0, 0, 0, 0, 0, 0])
    for i in range(2, 9):  # acyclic: a feature reads only features of earlier rows
        rows[i, row_nodes[i:]] = 0
    expected = propagate(normalize(rows), weights, row_nodes)
    blocks = [rows[:2], rows[2:6], rows[6:]]
    got = influence(blocks, weights, row_nodes, chunk_rows=3)
    torch.testing.assert_close(got, expected, atol=1e-7, rtol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rm, ids = exact_setup("llama", "clt", ("resid_mid", "mlp_out"))
    cpu = attribute(rm, ids)
    rm_cuda = ReplacementModel(rm.model.cuda(), rm.transcoder.cuda(), zero_first_position=False)
    gpu = attribute(rm_cuda, ids)
    torch.testing.assert_close(gpu.adjacency, cpu.adjacency, atol=1e-4, rtol=1e-4)
