"""The demo is trained once per machine: `make test` reads what `make demo` built in the user's
home, and `make demo` copies what `make test` built in the checkout's test home. Shown on a fake
demo (every stage's directory at its content-addressed place, with a manifest) and with every
training step made to fail, so nothing here trains."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from circuitmap.demo import artifacts, clt, model, stages
from circuitmap.demo.artifacts import demo_model_dir, is_built, stage_dir
from circuitmap.demo.catalogue import CatalogueConfig, catalogue_dir
from circuitmap.demo.clt import clt_dir
from circuitmap.demo.corpus import CorpusConfig, save_corpus_config
from circuitmap.demo.stages import (
    CHECKS_STAGE_VERSION,
    LABEL_VERSION,
    _checks_inputs,
    build_demo,
    catalogue_texts,
    find_built_demo,
)
from circuitmap.pipeline import GraphSettings


def fake_demo(root: Path) -> list[Path]:
    """Every default demo stage marked built under `root` (only the corpus config is real: the
    catalogue's place depends on it); returns the stage directories."""
    model_dir = demo_model_dir(root=root)
    model_dir.mkdir(parents=True)
    save_corpus_config(CorpusConfig(), model_dir)
    paths = [model_dir, clt_dir(model_dir)]
    texts = catalogue_texts(model_dir)
    paths.append(catalogue_dir(paths[1], texts, CatalogueConfig(), LABEL_VERSION))
    settings = _checks_inputs(paths[2], GraphSettings())
    paths.append(stage_dir("checks", CHECKS_STAGE_VERSION, settings, paths[1]))
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        (path / artifacts.MANIFEST).write_text("{}\n")
    return paths


@pytest.fixture
def homes(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(the user's home ~/.circuitmap, the checkout's test home), both empty, and no training."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("CIRCUITMAP_HOME", raising=False)
    monkeypatch.setattr(
        artifacts, "CHECKOUT_TEST_HOME", tmp_path / "checkout" / ".circuitmap" / "test"
    )

    def no_training(*args, **kwargs):
        raise AssertionError("trained a demo stage that was built elsewhere")

    for module, name in [
        (artifacts, "train_model"),
        (clt, "load_model"),  # the CLT's first step
        (model, "load_model"),  # the catalogue's first step
        (stages, "run_checks"),
    ]:
        monkeypatch.setattr(module, name, no_training)
    return tmp_path / "user" / ".circuitmap", artifacts.CHECKOUT_TEST_HOME


def test_tests_read_the_demo_make_demo_built(homes, monkeypatch) -> None:
    user, test_home = homes
    built = fake_demo(user / "demo")
    monkeypatch.setenv("CIRCUITMAP_HOME", str(test_home))  # as `make test` runs pytest
    found = find_built_demo()
    assert found is not None
    assert [found.model_dir, found.clt_dir, found.catalogue_dir, found.checks_dir] == built
    assert not test_home.exists()  # read in place: nothing copied, no database involved


def test_make_demo_copies_what_the_tests_built(homes) -> None:
    user, test_home = homes
    built = fake_demo(test_home / "demo")
    demo = build_demo(progress=False, log=lambda _: None)  # what `circuitmap demo` runs
    assert demo.built == []
    copied = [demo.model_dir, demo.clt_dir, demo.catalogue_dir, demo.checks_dir]
    assert [p.relative_to(user / "demo") for p in copied] == [
        p.relative_to(test_home / "demo") for p in built
    ]
    assert all(is_built(p) for p in copied) and find_built_demo([user / "demo"]) is not None


def test_a_partly_built_demo_copies_only_what_is_missing(homes) -> None:
    """Stages already built in the own home are kept; the missing ones come from the other."""
    user, test_home = homes
    fake_demo(test_home / "demo")
    own_model = fake_demo(user / "demo")[0]
    marker = own_model / "mine"
    marker.write_text("kept")
    shutil.rmtree(clt_dir(own_model))  # the CLT (and what lies inside it) is missing here
    messages: list[str] = []
    demo = build_demo(progress=False, log=messages.append)
    assert demo.built == [] and marker.read_text() == "kept"
    assert messages == [f"reusing the demo CLT built under {test_home.resolve() / 'demo'}"]
    assert is_built(demo.catalogue_dir) and is_built(demo.checks_dir)


def test_the_checks_stage_depends_only_on_what_shapes_a_graph(tmp_path) -> None:
    """Where and how a graph is computed (device, batch size, how transcoders are loaded, a memory
    limit) leaves the checks stage where `make demo` built it: a machine-side setting added to
    GraphSettings made every built demo look unbuilt, and the tests trained their own."""
    shaping = _checks_inputs(tmp_path, GraphSettings())["settings"]
    assert set(shaping) == {
        "max_n_logits",
        "desired_logit_prob",
        "max_feature_nodes",
        "node_threshold",
        "edge_threshold",
        "dtype",
    }
    assert _checks_inputs(tmp_path, GraphSettings(batch_size=8))["settings"] == shaping
