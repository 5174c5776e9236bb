"""Harvesting activations from tiny models of each family, and short training runs."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForCausalLM, Gemma2Config, GPT2Config, LlamaConfig
from typer.testing import CliRunner

import circuitmap.transcoders.training as training
from circuitmap.demo.tokenizer import build_tokenizer
from circuitmap.models import ModelAdapter
from circuitmap.transcoders import load_transcoder
from circuitmap.transcoders.activations import ActivationHarvester, TokenStream
from circuitmap.transcoders.training import TrainConfig, train_transcoder

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(WORDS, 9)


def tiny(family: str, tokenizer):
    common = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
              "pad_token_id": tokenizer.pad_token_id}  # fmt: skip
    if family == "gpt2":
        config = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common)
    elif family == "gemma2":
        config = Gemma2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                              max_position_embeddings=64, **common)  # fmt: skip
    else:
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4,
                             max_position_embeddings=64, **common)  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():  # non-trivial norm weights, so sites that differ by them differ
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


def prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(n)]


@pytest.mark.parametrize(
    "family,input_site,output_site",
    [
        ("llama", "resid_mid", "mlp_out"),
        ("llama", "mlp_in", "mlp_out"),
        ("llama", "mlp_in_unweighted", "mlp_out"),
        ("gpt2", "resid_mid", "mlp_out"),
        ("gemma2", "resid_mid", "mlp_out"),
        ("gemma2", "mlp_in_unweighted", "mlp_out_post_norm"),
    ],
)
def test_harvested_sites_are_the_mlp_input_and_output(tokenizer, family, input_site, output_site):
    model = tiny(family, tokenizer)
    adapter = ModelAdapter(model)
    texts = prompts(5)
    x, y = ActivationHarvester(model, tokenizer, input_site, output_site).harvest(texts)
    n_tokens = sum(len(t.split()) for t in texts)  # BOS dropped
    assert x.shape == y.shape == (n_tokens, 2, 32)
    resid, _ = ActivationHarvester(model, tokenizer, "resid_mid", "mlp_out").harvest(texts)
    with torch.no_grad():
        for layer in range(2):
            norm, mlp = adapter.mlp_norm(layer), adapter.mlp(layer)
            mlp_in = norm(resid[:, layer])
            if input_site == "mlp_in":
                assert torch.allclose(x[:, layer], mlp_in, atol=1e-5)
            if input_site == "mlp_in_unweighted":
                weight = adapter.norm_spec(norm).weight
                assert torch.allclose(x[:, layer] * weight, mlp_in, atol=1e-5)
                assert not torch.allclose(x[:, layer], mlp_in, atol=1e-2)
            expected = mlp(mlp_in)
            if output_site == "mlp_out_post_norm":
                expected = adapter.post_mlp_norm(layer)(expected)
            assert torch.allclose(y[:, layer], expected, atol=1e-5)


def test_token_stream_shuffles_and_stays_bounded(tokenizer):
    model = tiny("llama", tokenizer)
    harvester = ActivationHarvester(model, tokenizer, "resid_mid", "mlp_out", batch_size=8)
    texts = prompts(200)
    stream = TokenStream(harvester, texts, buffer_tokens=256, seed=0, prompts_per_harvest=16)
    assert not stream.static and len(stream.x) == 256
    seen = torch.cat([stream.sample(64)[0] for _ in range(20)])
    assert len(stream.x) <= 256 and seen.shape == (1280, 2, 32)
    small = TokenStream(harvester, texts[:10], buffer_tokens=4096, seed=0)
    assert small.static and len(small.x) == sum(len(t.split()) for t in texts[:10])


def short_config(**overrides) -> TrainConfig:
    base = {"kind": "clt", "n_features": 128, "steps": 200, "batch_tokens": 256,
            "buffer_tokens": 4096, "checkpoint_every": 0, "seed": 3}  # fmt: skip
    return TrainConfig(**(base | overrides))


def test_clt_training_reconstructs_sparsely_and_reproducibly(tokenizer, tmp_path):
    model = tiny("llama", tokenizer)
    texts = prompts(300)
    result = train_transcoder(model, tokenizer, texts, short_config(), tmp_path, progress=False)
    assert result.nmse < 0.35, result.summary()
    for m in result.layers:
        assert m.nmse < 0.5 and 0 < m.l0 < 64
    assert result.tokens_per_s > 0
    again = train_transcoder(model, tokenizer, texts, short_config(), progress=False)
    for a, b in zip(result.transcoder.parameters(), again.transcoder.parameters(), strict=True):
        assert torch.equal(a, b)
    # the saved transcoder reconstructs raw activations: same NMSE when reloaded
    loaded = load_transcoder(tmp_path)
    x, y = ActivationHarvester(model, tokenizer, "resid_mid", "mlp_out").harvest(texts[:40])
    with torch.no_grad():
        recon, _ = loaded(x.transpose(0, 1))
    y = y.transpose(0, 1)
    nmse = (recon - y).pow(2).sum() / (y - y.mean(1, keepdim=True)).pow(2).sum()
    assert nmse < 0.5


def test_plt_with_skip_and_topk(tokenizer):
    model = tiny("gpt2", tokenizer)
    texts = prompts(100)
    plt = train_transcoder(
        model, tokenizer, texts, short_config(kind="plt", skip=True, steps=100), progress=False
    )
    assert plt.transcoder.W_skip is not None and plt.nmse < 0.5
    topk = train_transcoder(
        model, tokenizer, texts, short_config(activation="topk", topk=4, steps=60), progress=False
    )
    assert all(0 < m.l0 <= 4 for m in topk.layers) and topk.nmse < 1


def test_resume_from_checkpoint(tokenizer, tmp_path, monkeypatch):
    model = tiny("llama", tokenizer)
    texts = prompts(100)
    config = short_config(steps=40, checkpoint_every=20)
    real_step, calls = training._step, []

    def crashing_step(*args):
        calls.append(1)
        if len(calls) == 30:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(training, "_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        train_transcoder(model, tokenizer, texts, config, tmp_path, progress=False)
    assert (tmp_path / "checkpoint.pt").exists()
    calls.clear()
    result = train_transcoder(model, tokenizer, texts, config, tmp_path, progress=False)
    assert len(calls) == 20 and result.steps == 40
    assert not (tmp_path / "checkpoint.pt").exists() and (tmp_path / "config.json").exists()
    # a checkpoint left by a run with other settings is refused, not silently mixed in
    torch.save({"config": {"steps": 1}}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="other settings"):
        train_transcoder(model, tokenizer, texts, config, tmp_path, progress=False)


def test_cli_train_and_info(tokenizer, tmp_path):
    from cli.main import app

    model = tiny("llama", tokenizer)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "corpus.txt").write_text("\n".join(prompts(60)) + "\n")
    runner = CliRunner()
    args = ["transcoders", "train", "--model", str(tmp_path / "model"), "--corpus",
            str(tmp_path / "corpus.txt"), "--out", str(tmp_path / "clt"), "--features", "32",
            "--steps", "20", "--batch-tokens", "64", "--buffer-tokens", "512", "--no-progress",
            "--circuit-tracer-out", str(tmp_path / "ct")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "NMSE" in result.output
    info = runner.invoke(app, ["transcoders", "info", str(tmp_path / "ct")])
    assert info.exit_code == 0 and "W_dec.0" in info.output and "[32, 2, 32]" in info.output
    bad = runner.invoke(app, ["transcoders", "info", str(tmp_path / "corpus.txt")])
    assert bad.exit_code == 1 and "error:" in bad.output
