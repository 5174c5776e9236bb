"""The transcoder module and its file formats (ours, circuit-tracer's, GemmaScope npz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from circuitmap.transcoders import (
    Transcoder,
    TranscoderConfig,
    TranscoderFormatError,
    check_compatible,
    load_transcoder,
    save_transcoder,
)

L, D, F = 3, 8, 16


def make(kind="clt", activation="jumprelu", skip=False, topk=None, seed=0) -> Transcoder:
    config = TranscoderConfig(
        kind=kind, n_layers=L, d_model=D, n_features=F, activation=activation, topk=topk, skip=skip
    )
    tc = Transcoder(config)
    gen = torch.Generator().manual_seed(seed)
    tc.init_weights(gen)
    with torch.no_grad():  # make every parameter matter in comparisons
        for p in tc.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
        if tc.threshold is not None:
            tc.threshold.copy_(0.2 * torch.rand(tc.threshold.shape, generator=gen))
    return tc


def naive_decode(tc: Transcoder, acts: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(L, acts.shape[1], D)
    for m in range(L):
        out[m] = tc.b_dec[m]
        if tc.W_skip is not None:
            out[m] += x[m] @ tc.W_skip[m]
        for source in range(m + 1):
            if m in tc.output_layers(source):
                out[m] += acts[source] @ tc.W_dec[source][:, m - source]
    return out


def assert_same(a: Transcoder, b: Transcoder) -> None:
    assert a.config.kind == b.config.kind and a.config.activation == b.config.activation
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for name in pa:
        assert torch.equal(pa[name], pb[name]), name


@pytest.mark.parametrize("kind", ["clt", "plt"])
@pytest.mark.parametrize("activation", ["jumprelu", "relu", "topk"])
def test_shapes_and_decode_formula(kind, activation):
    tc = make(kind, activation, skip=True, topk=3 if activation == "topk" else None)
    x = torch.randn(L, 5, D)
    recon, acts = tc(x)
    assert acts.shape == (L, 5, F) and recon.shape == (L, 5, D)
    assert torch.allclose(recon, naive_decode(tc, acts, x), atol=1e-5)
    pre = tc.pre_activations(x)
    for layer in range(L):
        assert torch.allclose(pre[layer], x[layer] @ tc.W_enc[layer].T + tc.b_enc[layer], atol=1e-5)
    if activation == "jumprelu":
        assert torch.equal(acts, pre * (pre > tc.threshold[:, None]))
    elif activation == "topk":
        assert ((acts > 0).sum(-1) <= 3).all()
    n_out = [tc.W_dec[layer].shape[1] for layer in range(L)]
    assert n_out == ([3, 2, 1] if kind == "clt" else [1, 1, 1])
    assert list(tc.output_layers(1)) == ([1, 2] if kind == "clt" else [1])
    assert tc.decoder_vectors(1, torch.tensor([0, 5])).shape == (2, n_out[1], D)


def test_plt_is_the_clt_restricted_to_own_layer():
    clt, plt = make("clt"), make("plt")
    with torch.no_grad():
        for layer in range(L):
            clt.W_dec[layer].zero_()
            clt.W_dec[layer][:, 0] = plt.W_dec[layer][:, 0]
        for name in ("W_enc", "b_enc", "b_dec", "threshold"):
            getattr(clt, name).copy_(getattr(plt, name))
    x = torch.randn(L, 4, D)
    assert torch.allclose(clt(x)[0], plt(x)[0], atol=1e-6)


def test_jumprelu_threshold_gets_straight_through_gradient():
    tc = make("clt")
    x = torch.randn(L, 64, D)
    pre = tc.pre_activations(x)
    acts = tc.activate(pre)
    acts.sum().backward()
    window = ((pre - tc.threshold[:, None]).abs() < tc.bandwidth / 2).float()
    expected = (-(tc.threshold[:, None] / tc.bandwidth) * window).sum(1)
    assert torch.allclose(tc.threshold.grad, expected, atol=1e-5)


def test_fold_scales_maps_raw_to_raw():
    tc = make("clt", skip=True)
    sx, sy = torch.tensor([2.0, 0.5, 3.0]), torch.tensor([0.1, 4.0, 1.5])
    x = torch.randn(L, 6, D)
    normalised, acts = tc(x / sx[:, None, None])
    folded = make("clt", skip=True)
    folded.fold_scales(sx, sy)
    raw, raw_acts = folded(x)
    assert torch.allclose(raw_acts, acts, atol=1e-5)
    assert torch.allclose(raw, normalised * sy[:, None, None], atol=1e-4)


@pytest.mark.parametrize("kind", ["clt", "plt"])
def test_our_format_round_trip(tmp_path, kind):
    tc = make(kind, skip=True)
    tc.config.name = "mine"
    save_transcoder(tc, tmp_path / "tc", metadata={"note": 1})
    back = load_transcoder(tmp_path / "tc")
    assert_same(tc, back)
    assert back.config == tc.config


@pytest.mark.parametrize(
    "kind,activation,skip",
    [
        ("clt", "jumprelu", False),
        ("clt", "relu", False),
        ("plt", "jumprelu", True),
        ("plt", "relu", False),
    ],
)
def test_circuit_tracer_format_round_trip(tmp_path, kind, activation, skip):
    tc = make(kind, activation, skip=skip)
    save_transcoder(tc, tmp_path / "ct", format="circuit-tracer")
    config = yaml.safe_load((tmp_path / "ct" / "config.yaml").read_text())
    expected_kind = "cross_layer_transcoder" if kind == "clt" else "transcoder_set"
    assert config["model_kind"] == expected_kind
    assert config["feature_input_hook"] == "hook_resid_mid"
    assert config["feature_output_hook"] == "mlp.hook_out"
    if kind == "clt":
        enc = load_file(tmp_path / "ct" / "W_enc_1.safetensors")
        assert enc["W_enc_1"].shape == (F, D) and enc["b_dec_1"].shape == (D,)
        assert ("threshold_1" in enc) == (activation == "jumprelu")
        assert load_file(tmp_path / "ct" / "W_dec_1.safetensors")["W_dec_1"].shape == (F, 2, D)
    else:
        layer = load_file(tmp_path / "ct" / "layer_2.safetensors")
        assert layer["W_enc"].shape == (F, D) and layer["W_dec"].shape == (F, D)
        assert ("activation_function.threshold" in layer) == (activation == "jumprelu")
        if skip:  # circuit-tracer applies x @ W_skip.T
            assert torch.equal(layer["W_skip"], tc.W_skip[2].T)
    back = load_transcoder(tmp_path / "ct")
    assert_same(tc, back)
    assert (back.config.input_site, back.config.output_site) == ("resid_mid", "mlp_out")


def test_circuit_tracer_hook_names_map_to_sites(tmp_path):
    save_transcoder(make("plt"), tmp_path, format="circuit-tracer")
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    config.update(feature_input_hook="mlp.hook_in", feature_output_hook="hook_mlp_out")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    back = load_transcoder(tmp_path)
    assert (back.config.input_site, back.config.output_site) == ("mlp_in", "mlp_out_post_norm")


def test_cannot_save_what_circuit_tracer_cannot_express(tmp_path):
    with pytest.raises(TranscoderFormatError, match="TopK"):
        save_transcoder(make("clt", "topk", topk=2), tmp_path, format="circuit-tracer")
    with pytest.raises(TranscoderFormatError, match="skip"):
        save_transcoder(make("clt", skip=True), tmp_path, format="circuit-tracer")


def test_gemma_scope_npz_set(tmp_path):
    gen = np.random.default_rng(0)
    params = []
    for layer in range(L):
        p = {
            "W_enc": gen.normal(size=(D, F)).astype(np.float32),
            "W_dec": gen.normal(size=(F, D)).astype(np.float32),
            "b_enc": gen.normal(size=F).astype(np.float32),
            "b_dec": gen.normal(size=D).astype(np.float32),
            "threshold": gen.uniform(0, 0.5, size=F).astype(np.float32),
        }
        np.savez(tmp_path / f"params_{layer}.npz", **p)
        params.append(p)
    config = {
        "model_kind": "transcoder_set",
        "feature_input_hook": "ln2.hook_normalized",
        "feature_output_hook": "hook_mlp_out",
        "transcoders": [
            f"hf://google/gemma-scope-2b-pt-transcoders/layer_{i}/width_16k/params_{i}.npz"
            for i in range(L)
        ],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    tc = load_transcoder(tmp_path)
    assert tc.config.kind == "plt" and tc.config.activation == "jumprelu"
    assert (tc.config.input_site, tc.config.output_site) == (
        "mlp_in_unweighted",
        "mlp_out_post_norm",
    )
    x = torch.randn(L, 4, D)
    with torch.no_grad():
        recon, acts = tc(x)
    for layer, p in enumerate(params):
        pre = x[layer].numpy() @ p["W_enc"] + p["b_enc"]
        expected = pre * (pre > p["threshold"])
        np.testing.assert_allclose(acts[layer].numpy(), expected, atol=1e-4)
        np.testing.assert_allclose(
            recon[layer].numpy(), expected @ p["W_dec"] + p["b_dec"], atol=1e-3
        )


def test_gemma_scope_2_layer_files(tmp_path):
    gen = torch.Generator().manual_seed(1)
    files = []
    for layer in range(L):
        tensors = {
            "w_enc": torch.randn(D, F, generator=gen),
            "w_dec": torch.randn(F, D, generator=gen),
            "b_enc": torch.randn(F, generator=gen),
            "b_dec": torch.randn(D, generator=gen),
            "threshold": torch.rand(F, generator=gen),
            "affine_skip_connection": torch.randn(D, D, generator=gen),
        }
        save_file(tensors, tmp_path / f"l{layer}.safetensors")
        files.append(tensors)
    config = {"model_kind": "transcoder_set", "feature_input_hook": "mlp.hook_in",
              "feature_output_hook": "hook_mlp_out",
              "transcoders": [str(tmp_path / f"l{i}.safetensors") for i in range(L)]}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    tc = load_transcoder(tmp_path)
    assert tc.config.skip and torch.equal(tc.W_enc[1], files[1]["w_enc"].T)
    x = torch.randn(L, 3, D)
    with torch.no_grad():
        recon, acts = tc(x)
    t = files[2]
    pre = x[2] @ t["w_enc"] + t["b_enc"]
    expected = (pre * (pre > t["threshold"])) @ t["w_dec"] + t["b_dec"]
    expected += x[2] @ t["affine_skip_connection"]
    assert torch.allclose(recon[2], expected, atol=1e-4)


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    save_transcoder(make("clt"), tmp_path / "a", format="circuit-tracer")
    target = tmp_path / "a" / "W_dec_1.safetensors"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(TranscoderFormatError, match=r"W_dec_1\.safetensors.*corrupt or truncated"):
        load_transcoder(tmp_path / "a")
    save_transcoder(make("plt"), tmp_path / "b")
    (tmp_path / "b" / "transcoder.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(TranscoderFormatError, match=r"transcoder\.safetensors"):
        load_transcoder(tmp_path / "b")


def test_missing_keys_files_and_bad_shapes(tmp_path):
    save_transcoder(make("plt"), tmp_path / "a", format="circuit-tracer")
    layer1 = tmp_path / "a" / "layer_1.safetensors"
    tensors = load_file(layer1)
    del tensors["b_dec"]
    save_file(tensors, layer1)
    with pytest.raises(TranscoderFormatError, match=r"layer_1\.safetensors: missing tensor b_dec"):
        load_transcoder(tmp_path / "a")

    save_transcoder(make("plt"), tmp_path / "b", format="circuit-tracer")
    (tmp_path / "b" / "layer_1.safetensors").unlink()
    with pytest.raises(TranscoderFormatError, match="missing layer_1.safetensors"):
        load_transcoder(tmp_path / "b")

    save_transcoder(make("clt"), tmp_path / "c", format="circuit-tracer")
    dec = tmp_path / "c" / "W_dec_0.safetensors"
    save_file({"W_dec_0": torch.zeros(F, 2, D)}, dec)  # should be [F, 3, D]
    with pytest.raises(TranscoderFormatError, match=r"W_dec\.0 has shape \[16, 2, 8\]"):
        load_transcoder(tmp_path / "c")

    save_transcoder(make("clt"), tmp_path / "d", format="circuit-tracer")
    (tmp_path / "d" / "config.yaml").write_text("model_kind: cross_layer_transcoder\n"
                                                "feature_input_hook: blocks.hook_x\n"
                                                "feature_output_hook: hook_mlp_out\n")  # fmt: skip
    with pytest.raises(TranscoderFormatError, match="feature_input_hook 'blocks.hook_x'"):
        load_transcoder(tmp_path / "d")

    with pytest.raises(TranscoderFormatError, match="no such transcoder directory"):
        load_transcoder(tmp_path / "nowhere")


def test_check_compatible():
    tc = make("clt")
    check_compatible(tc, L, D)
    with pytest.raises(TranscoderFormatError, match="3 layers x d_model 8.*4 layers x d_model 8"):
        check_compatible(tc, 4, D)


def test_bad_config_values():
    with pytest.raises(TranscoderFormatError, match="kind must be"):
        TranscoderConfig(kind="sae", n_layers=1, d_model=2, n_features=2)
    with pytest.raises(TranscoderFormatError, match="topk"):
        TranscoderConfig(kind="plt", n_layers=1, d_model=2, n_features=2, activation="topk")
