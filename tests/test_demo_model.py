"""Training and caching the demo model, on a tiny corpus and model so it takes seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import circuitmap.demo.artifacts as artifacts
from circuitmap.demo.artifacts import DemoModelSpec, build_demo_model, cached_stage, is_built
from circuitmap.demo.corpus import CorpusConfig, load_corpus, read_jsonl
from circuitmap.demo.evaluate import Accuracy, evaluate, evaluate_saved
from circuitmap.demo.model import ModelConfig, load_model
from circuitmap.demo.train import TrainConfig

TINY = DemoModelSpec(
    corpus=CorpusConfig(
        n_states=3, cities_per_state=4, max_operand=9, n_known=4, n_unknown_train=4,
        n_unknown_heldout=2, demo_prompts_per_task=6,
    ),
    model=ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32),
    train=TrainConfig(steps=4, batch_size=32, warmup_steps=2),
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_demo_model(TINY, root=tmp_path_factory.mktemp("demo"), progress=False)


def test_saved_model_loads_with_auto_classes(tiny_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    assert model.config.model_type == "llama" and not model.config.tie_word_embeddings
    assert model.config.vocab_size == len(tok) and model.config.num_hidden_layers == 1
    assert (tiny_dir / "model.safetensors").is_file()
    ids = tok(["the capital of the state containing dallas is"], return_tensors="pt")["input_ids"]
    assert ids[0, 0] == tok.bos_token_id and tok.unk_token_id not in ids
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))


def test_saved_alongside_the_model(tiny_dir):
    report = json.loads((tiny_dir / "training.json").read_text())
    assert report["train"]["steps"] == 4 and report["seconds"] >= 0
    assert "two_hop/heldout" in report["accuracy"]
    assert load_corpus(tiny_dir).config == TINY.corpus
    prompts = read_jsonl(tiny_dir / "demo_prompts.jsonl")
    assert len(prompts) == 18 and {"id", "text", "tags", "answer", "metadata"} <= set(prompts[0])
    manifest = json.loads((tiny_dir / "stage.json").read_text())
    assert manifest["stage"] == "model" and manifest["inputs"]["train"]["steps"] == 4


def test_evaluate_reports_every_kind_and_split(tiny_dir):
    acc = evaluate_saved(tiny_dir)
    corpus = load_corpus(tiny_dir)
    assert sum(a.total for a in acc.values()) == len(corpus.examples)
    assert {("two_hop", "heldout"), ("addition", "heldout"), ("unknown", "heldout")} <= set(acc)
    assert all(0 <= a.correct <= a.total for a in acc.values())
    report = json.loads((tiny_dir / "training.json").read_text())["accuracy"]
    assert {f"{k}/{s}": a.correct for (k, s), a in acc.items()} == {
        key: r["correct"] for key, r in report.items()
    }


def test_cached_model_is_reused_and_inputs_change_the_directory(tiny_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("trained again although cached")

    monkeypatch.setattr(artifacts, "train_model", fail)
    assert build_demo_model(TINY, root=tiny_dir.parent, progress=False) == tiny_dir
    other = DemoModelSpec(TINY.corpus, TINY.model, TrainConfig(steps=5, batch_size=32))
    assert artifacts.demo_model_dir(other, root=tiny_dir.parent) != tiny_dir


def test_training_is_reproducible(tiny_dir, tmp_path):
    again = build_demo_model(TINY, root=tmp_path, progress=False)
    first, second = (
        load_file(tiny_dir / "model.safetensors"),
        load_file(again / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_failed_build_leaves_nothing_behind(tmp_path):
    def broken(out):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_stage("clt", 1, {"model": "model-x"}, broken, root=tmp_path)
    assert list(tmp_path.iterdir()) == []
    built = cached_stage("clt", 1, {"model": "model-x"}, lambda out: None, root=tmp_path)
    assert is_built(built) and built.name.startswith("clt-")


class _AlwaysSays(torch.nn.Module):
    """A stand-in model that always predicts one token, to check the metric itself."""

    def __init__(self, token_id: int, vocab: int):
        super().__init__()
        self.token_id, self.vocab = token_id, vocab

    def forward(self, input_ids):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[..., self.token_id] = 1.0
        return SimpleNamespace(logits=logits)


def test_evaluate_is_greedy_exact_match(tiny_dir):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    examples = load_corpus(tiny_dir).select(task="two_hop")
    acc = evaluate(_AlwaysSays(tok.convert_tokens_to_ids("austin"), len(tok)), tok, examples)
    assert acc[("capital", "train")] == Accuracy(1, 3)  # texas, california, florida
    assert acc[("city_state", "train")].correct == 0


def _cached_default_model():
    homes = [os.environ.get("CIRCUITMAP_HOME", "~/.circuitmap"), "~/.circuitmap"]
    for home in dict.fromkeys(Path(h).expanduser() for h in homes):
        path = artifacts.demo_model_dir(root=home / "demo")
        if is_built(path):
            return path
    pytest.skip("the default demo model is not built (`circuitmap demo build-model`)")


def test_default_demo_model_composes_rather_than_recalls():
    """On the cached default model (trains nothing): held-out items need composition."""
    path = _cached_default_model()
    model, tok = load_model(path)
    examples = load_corpus(path).examples
    # every held-out and fact item, and one in ten addition training items (keeps it fast)
    sample = [
        e
        for i, e in enumerate(examples)
        if i % 10 == 0 or e.split != "train" or e.task != "addition"
    ]
    acc = evaluate(model, tok, sample)
    assert acc[("two_hop", "heldout")].value >= 0.9  # chance: 1 in 20 capitals
    assert acc[("addition", "heldout")].value >= 0.85
    assert acc[("units", "heldout")].value >= 0.9  # chance: 1 in 10 digits
    assert acc[("unknown", "heldout")].value >= 0.6
    assert all(a.value >= 0.95 for (_, split), a in acc.items() if split == "train")
