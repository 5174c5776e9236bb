"""The general feature catalogue on a tiny model with planted features (no database)."""

from __future__ import annotations

import pytest

from circuitmap.catalogue import CatalogueSettings, build_catalogue_dir, load_catalogue
from circuitmap.catalogue.builder import CHECKPOINT_FILE, feature_catalogue
from circuitmap.models import ModelAdapter
from tests.catalogue_fixtures import BROAD, CITY, PLANTED_LAYER, Planted, planted

SETTINGS = CatalogueSettings(batch_texts=16, quantile_bins=4, per_bin=2, samples=24)


@pytest.fixture(scope="module")
def world() -> Planted:
    return planted()


def _card(cards, layer: int, index: int):
    [card] = [c for c in cards if (c.layer, c.index) == (layer, index)]
    return card


def test_planted_feature_contexts_density_and_logit_effects(world: Planted):
    cards, result = feature_catalogue(
        world.model, world.tokenizer, world.transcoder, world.texts, SETTINGS
    )
    cards = list(cards)
    assert len(cards) == world.transcoder.n_layers * world.transcoder.n_features
    card = _card(cards, PLANTED_LAYER, CITY)
    with_city = [t for t in world.texts if "dallas" in t.split()]
    assert card.active_texts == len(with_city)
    assert card.density == pytest.approx(len(with_city) / result.n_tokens)
    assert len(card.top_contexts) == SETTINGS.n_contexts
    assert card.peak_tokens() == ["dallas"] * SETTINGS.n_contexts
    for context in card.top_contexts:  # fires on "dallas" and nowhere else
        fires = [t for t, a in zip(context.tokens, context.activations, strict=True) if a > 0]
        assert fires == ["dallas"]
    peaks = [max(c.activations) for c in card.top_contexts]
    assert peaks == sorted(peaks, reverse=True) and peaks[0] == pytest.approx(
        card.max_activation, abs=1e-4
    )
    assert card.top_logits[0] == "austin" and card.bottom_logits[0] == "texas"
    # Summed over both layers the feature writes to (1/4 + 3/4 of the planted direction).
    adapter = ModelAdapter(world.model)
    gain = adapter.norm_spec(adapter.final_norm).weight.float()
    effects = (world.logit_direction * gain) @ adapter.W_U.float()
    effects -= effects.mean()
    austin, texas = world.tokenizer.convert_tokens_to_ids(["austin", "texas"])
    assert card.top_logit_effects[0] == pytest.approx(float(effects[austin]), abs=1e-4)
    assert card.bottom_logit_effects[0] == pytest.approx(float(effects[texas]), abs=1e-4)
    assert card.label == '"dallas" → "austin"' and card.label_source == "auto"


def test_quantile_bins_sample_below_the_top(world: Planted):
    cards, _ = feature_catalogue(
        world.model, world.tokenizer, world.transcoder, world.texts, SETTINGS
    )
    card = _card(list(cards), PLANTED_LAYER, BROAD)
    assert card.active_texts > SETTINGS.n_contexts + 10
    assert len(card.quantiles) >= 2
    top = {tuple(c.tokens) for c in card.top_contexts}
    for q in card.quantiles:
        assert 0 < len(q.contexts) <= SETTINGS.per_bin
        assert q.upper <= card.max_activation + 1e-4
        for context in q.contexts:
            assert q.lower - 1e-3 < max(context.activations) <= q.upper + 1e-3
            assert tuple(context.tokens) not in top
    lowest = min(max(c.activations) for q in card.quantiles for c in q.contexts)
    assert lowest < min(max(c.activations) for c in card.top_contexts)


class Killed(Exception):
    pass


def test_a_killed_build_resumes_to_the_same_catalogue(world: Planted, tmp_path):
    args = (world.model, world.tokenizer, world.transcoder, world.texts)
    whole = tmp_path / "whole"
    build_catalogue_dir(*args, whole, SETTINGS)

    def kill_after_two_batches(step) -> None:
        if step.stage == "corpus" and step.done >= 2 * SETTINGS.batch_texts:
            raise Killed

    resumed = tmp_path / "resumed"
    with pytest.raises(Killed):
        build_catalogue_dir(*args, resumed, SETTINGS, progress=kill_after_two_batches)
    assert (resumed / CHECKPOINT_FILE).is_file()
    heard = []
    result = build_catalogue_dir(*args, resumed, SETTINGS, progress=heard.append)
    assert result.resumed_from == 2 * SETTINGS.batch_texts
    assert heard[0].done == 3 * SETTINGS.batch_texts  # the first two batches are not redone
    assert not (resumed / CHECKPOINT_FILE).exists()
    assert load_catalogue(resumed) == load_catalogue(whole)


def test_a_checkpoint_of_another_corpus_is_not_resumed(world: Planted, tmp_path):
    args = (world.model, world.tokenizer, world.transcoder)

    def kill(step) -> None:
        raise Killed

    with pytest.raises(Killed):
        build_catalogue_dir(*args, world.texts, tmp_path, SETTINGS, progress=kill)
    other = world.texts[::-1]
    result = build_catalogue_dir(*args, other, tmp_path, SETTINGS)
    assert result.resumed_from == 0 and result.n_texts == len(other)


def test_bad_settings_and_empty_corpus_are_refused(world: Planted):
    with pytest.raises(ValueError, match="positive"):
        CatalogueSettings(batch_texts=0)
    with pytest.raises(ValueError, match="at least one"):
        feature_catalogue(world.model, world.tokenizer, world.transcoder, [], SETTINGS)


def test_automatic_labels_read_peaks_and_top_logit_without_subword_markers():
    from circuitmap.catalogue import Context, FeatureCard, auto_label

    contexts = [
        Context(["▁The", "▁city", "▁of", "▁Dallas"], [0.0, 0.0, 0.1, 2.0]),
        Context(["▁Dallas", "▁is"], [1.5, 0.0]),
        Context(["ĠPlano", "Ġis"], [1.0, 0.2]),
    ]
    card = FeatureCard(0, 0, "", 0.01, 3, 1.0, 2.0, ["▁Texas"], [1.0], ["▁Ohio"], [-1.0], contexts)
    assert auto_label(card) == '"Dallas"/"Plano" → "Texas"'
    card.top_contexts = []
    assert auto_label(card) == "inactive on the corpus"


def test_a_sigkilled_cli_build_continues_from_its_last_batch(world: Planted, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from circuitmap.transcoders import save_transcoder

    model_dir, tc_dir, out = tmp_path / "model", tmp_path / "clt", tmp_path / "out"
    world.model.save_pretrained(model_dir)
    world.tokenizer.save_pretrained(model_dir)
    save_transcoder(world.transcoder, tc_dir)
    texts = [f"{t} {i % 10}" for i, t in enumerate(world.texts * 4)]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    command = [
        str(Path(sys.executable).parent / "circuitmap"), "catalogue", "build",
        "--model", str(model_dir),
        "--transcoders", str(tc_dir), "--corpus", str(tmp_path / "texts.txt"), "--out", str(out),
        "--batch-texts", "8", "--threads", "1", "--no-store", "--no-progress",
    ]  # fmt: skip
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / CHECKPOINT_FILE).exists() and run.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert (out / CHECKPOINT_FILE).is_file(), "the build ended before it could be killed"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert "resumed after" in " ".join(finished.stdout.split())
    settings = CatalogueSettings(batch_texts=8)
    build_catalogue_dir(world.model, world.tokenizer, world.transcoder, texts, tmp_path / "whole",
                        settings)  # fmt: skip
    assert load_catalogue(out) == load_catalogue(tmp_path / "whole")
