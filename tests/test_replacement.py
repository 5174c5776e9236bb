"""The local replacement model reproduces the real model's logits on its prompt."""

import pytest
import torch

from circuitmap.models import ModelAdapter, tokenize
from circuitmap.replacement import ReplacementModel
from circuitmap.transcoders import TranscoderFormatError
from tests.tiny_models import FAMILIES, tiny_model, tiny_tokenizer, tiny_transcoder

PROMPT = "the capital of the state containing dallas is"
# Every family and kind at the default sites; the other sites where they differ most (Gemma-2's
# post-MLP norm, GPT-2's LayerNorm with bias).
CASES = [(f, k, ("resid_mid", "mlp_out")) for f in FAMILIES for k in ("clt", "plt")] + [
    (f, "clt", sites)
    for f in ("gpt2", "gemma2")
    for sites in [("mlp_in", "mlp_out_post_norm"), ("mlp_in_unweighted", "mlp_out")]
]


@pytest.mark.parametrize(("family", "kind", "sites"), CASES)
def test_replacement_logits_equal_real_logits(family, kind, sites):
    model = tiny_model(family)
    tc = tiny_transcoder(kind, skip=True, input_site=sites[0], output_site=sites[1])
    rm = ReplacementModel(model, tc)
    ids = tokenize(tiny_tokenizer(), PROMPT)
    run = rm.run(ids)
    with torch.no_grad():
        real = model(ids[None]).logits[0]
        replaced = rm.replacement_logits(run)
    assert run.activations.count_nonzero() > 0
    assert (run.errors.abs().amax() > 1e-3).item()  # the transcoder is far from exact
    torch.testing.assert_close(replaced, real, atol=1e-4, rtol=0)
    torch.testing.assert_close(run.logits, real, atol=1e-6, rtol=0)


def test_replacement_gradients_see_frozen_linear_model():
    """Through the replacement model, d(logit)/d(embedding) is the frozen linear map's."""
    model = tiny_model("llama")
    rm = ReplacementModel(model, tiny_transcoder("clt"))
    run = rm.run(tokenize(tiny_tokenizer(), PROMPT))
    emb = run.token_vectors.clone().requires_grad_(True)
    handle = rm.adapter.embed.register_forward_hook(lambda m, a, out: emb[None])
    try:
        rm.replacement_logits(run)[-1, 5].backward()
    finally:
        handle.remove()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_adapter_locates_gemma2_norms():
    adapter = ModelAdapter(tiny_model("gemma2"))
    assert set(adapter.norms(0)) == {"attn", "post_attn", "mlp", "post_mlp"}
    assert adapter.output_site_module(0, "mlp_out_post_norm") is adapter.post_mlp_norm(0)
    assert adapter.output_site_module(0, "mlp_out") is adapter.mlp(0)
    assert adapter.norm_spec(adapter.final_norm).weight.mean() != 0  # (1 + w) convention


def test_transcoder_that_does_not_fit_is_rejected():
    model = tiny_model("gpt2")
    tc = tiny_transcoder("clt")
    tc.config.d_model = 16
    with pytest.raises(TranscoderFormatError, match="d_model"):
        ReplacementModel(model, tc)


def test_tokenize_prepends_bos_once_and_rejects_empty():
    tok = tiny_tokenizer()
    ids = tokenize(tok, "dallas is")
    assert ids[0] == tok.bos_token_id and len(ids) == 3
    assert torch.equal(tokenize(tok, ids.tolist()), ids)
    with pytest.raises(ValueError, match="empty prompt"):
        tokenize(tok, "  ")
