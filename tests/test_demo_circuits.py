"""The demo's circuits, on the real (cached) demo artefacts: they are there, and the checks notice
when they are not.

The artefacts are those `make demo` built (in $CIRCUITMAP_HOME/demo or ~/.circuitmap/demo), else
the session builds them once into the test home, where later runs find them.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitmap.demo.catalogue import load_catalogue
from circuitmap.demo.circuits import (
    Concepts,
    TwoHopChecker,
    check_addition,
    features_on_path,
    swap_prediction,
    without_features,
)
from circuitmap.demo.concepts import DemoWorld
from circuitmap.demo.corpus import load_corpus
from circuitmap.demo.stages import DemoBuild, build_demo, built_demo
from circuitmap.pipeline import GraphBuilder
from cli.main import app
from db.config import load_settings
from db.server import local_password
from tests.ingest_helpers import query

pytestmark = pytest.mark.skip(reason="work in progress (demo circuits engineer)")

# What the default demo reaches, with a margin (`circuitmap demo` prints the measured shares).
MIN_TWO_HOP = {"train": 0.6, "heldout": 0.6}  # path and swap both hold
MIN_SUM_PATH = 0.8  # addition: a feature for the sum (+-2) on a path from an operand to it
N_SAMPLE = 12  # prompts per task re-checked here (graphs are recomputed: keep it short)


def _homes() -> list[Path]:
    homes = [Path(os.environ["CIRCUITMAP_HOME"]), Path("~/.circuitmap").expanduser()]
    return list(dict.fromkeys(h.resolve() for h in homes))


@pytest.fixture(scope="session")
def demo() -> DemoBuild:
    for home in _homes():
        found = built_demo(home / "demo")
        if found is not None:
            return found
    return build_demo(root=_homes()[0] / "demo", threads=2, progress=False, log=lambda _: None)


@pytest.fixture(scope="session")
def world(demo: DemoBuild) -> DemoWorld:
    return DemoWorld.of(load_corpus(demo.model_dir).config)


@pytest.fixture(scope="session")
def concepts(demo: DemoBuild, world: DemoWorld) -> Concepts:
    return Concepts.of(demo.cards(), world)


@pytest.fixture(scope="session")
def builder(demo: DemoBuild) -> GraphBuilder:
    return GraphBuilder.from_paths(str(demo.model_dir), str(demo.clt_dir))


def _sample(demo: DemoBuild, task: str) -> list[dict]:
    prompts = [p for p in demo.prompts() if p["tags"][0] == task]
    return random.Random(0).sample(prompts, min(N_SAMPLE, len(prompts)))


def test_reported_fractions_reach_the_stated_minimum(demo: DemoBuild):
    checks = demo.checks()
    for split, minimum in MIN_TWO_HOP.items():
        assert checks["two_hop"][split]["passed"] >= minimum, checks["two_hop"]
        assert checks["addition"][split]["sum_path"] >= MIN_SUM_PATH, checks["addition"]


def test_two_hop_circuit_is_found_and_lost_without_its_state_features(
    demo: DemoBuild, builder: GraphBuilder, world: DemoWorld, concepts: Concepts
):
    checker = TwoHopChecker(builder, world, concepts)
    passed = removed = wrong_state = ablated_only = 0
    prompts = _sample(demo, "two_hop")
    for prompt in prompts:
        record = builder.build(prompt["text"])
        result = checker.check(prompt, record)
        passed += result.passed
        own = concepts.features_of_state(result.state)
        other = concepts.features_of_state(result.swap_state)
        city, answer = result.city, result.answer
        # Negative controls: without the state's features the graph has no such path; the other
        # state's features are (nearly) never on it; ablating without injecting does not name the
        # other state's capital.
        removed += bool(features_on_path(without_features(record, own), {city}, answer, own))
        wrong_state += bool(features_on_path(record, {city}, answer, other))
        donor = checker.donor(result.swap_state, prompt["text"], city)
        assert donor is not None
        ablated = swap_prediction(builder, prompt["text"], donor, own, set())
        ablated_only += ablated == result.swap_answer
    n = len(prompts)
    assert passed >= min(MIN_TWO_HOP.values()) * n
    assert removed == 0
    assert wrong_state <= 0.2 * n
    assert ablated_only == 0


def test_addition_sum_features_are_on_the_path_and_specific(
    demo: DemoBuild, builder: GraphBuilder, concepts: Concepts
):
    prompts = _sample(demo, "addition")
    on_path = far = 0
    for prompt in prompts:
        record = builder.build(prompt["text"])
        result = check_addition(prompt, record, concepts)
        on_path += result.sum_path
        sources, answer = {str(result.a), str(result.b)}, result.answer
        # Negative controls: features of sums 20 away are not on the path, and without the sum
        # features the check fails.
        far += bool(
            features_on_path(record, sources, answer, concepts.features_of_sum(int(answer) + 20))
        )
        stripped = without_features(record, concepts.sums)
        assert not check_addition(prompt, stripped, concepts).sum_path
    assert on_path >= MIN_SUM_PATH * len(prompts)
    assert far <= 0.2 * len(prompts)


@pytest.mark.xfail(
    reason="the demo model has no units-digit representation (sum % 10 is not linearly "
    "decodable before the last MLP): it adds by magnitude features only",
    strict=False,
)
def test_addition_units_digit_path(demo: DemoBuild):
    assert demo.checks()["addition"]["all"]["units_path"] >= 0.5


def test_catalogue_entries_are_complete(demo: DemoBuild):
    cards = load_catalogue(demo.catalogue_dir)
    n_layers = 1 + max(c.layer for c in cards)
    n_features = 1 + max(c.index for c in cards)
    assert [(c.layer, c.index) for c in cards] == [
        (layer, index) for layer in range(n_layers) for index in range(n_features)
    ]
    live = [c for c in cards if c.density > 0]
    assert len(live) >= 0.9 * len(cards)
    for card in live:
        assert card.label and card.top_contexts
        assert len(card.top_logits) == len(card.bottom_logits) == 10
        assert card.top_logit_effects == sorted(card.top_logit_effects, reverse=True)
        assert card.bottom_logit_effects == sorted(card.bottom_logit_effects)
        assert 0 < card.density <= 1 and card.max_activation >= card.mean_activation > 0
        peaks = [max(c.activations) for c in card.top_contexts]
        assert peaks == sorted(peaks, reverse=True)
        assert abs(peaks[0] - card.max_activation) < 1e-3
        assert all(len(c.tokens) == len(c.activations) > 0 for c in card.top_contexts)
    assert all(not c.top_contexts for c in cards if c.density == 0)


def test_demo_command_stores_one_graph_per_prompt(demo: DemoBuild, clean_db, monkeypatch):
    """`circuitmap demo` on a clean database: the catalogue and one complete graph per prompt;
    a second run builds and computes nothing."""
    settings = load_settings()
    if not settings.external:  # the artefacts' home may not be the test server's: name it
        monkeypatch.setenv("NEO4J_URI", settings.local_uri)
        monkeypatch.setenv("NEO4J_PASSWORD", local_password(settings) or "")
    monkeypatch.setenv("CIRCUITMAP_HOME", str(demo.model_dir.parent.parent))
    n = 4
    result = CliRunner().invoke(app, ["demo", "--limit", str(n), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "cached: model, clt, catalogue, checks" in result.output
    graphs = query(
        clean_db,
        "MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph {status: 'complete'}) "
        "RETURN p.uid AS prompt, g.transcoder_uid AS transcoder, g.n_nodes AS nodes",
    )
    expected = [p["id"] for p in demo.prompts()[:n]]
    assert sorted(g["prompt"] for g in graphs) == sorted(expected)
    assert all(g["transcoder"] == demo.clt_dir.name and g["nodes"] > 0 for g in graphs)
    features = query(
        clean_db,
        "MATCH (f:Feature {transcoder_uid: $t}) WHERE f.density IS NOT NULL "
        "RETURN count(f) AS n, count(f.top_contexts) AS contexts",
        t=demo.clt_dir.name,
    )[0]
    assert features["n"] == len(demo.cards()) == features["contexts"]
    labelled = query(
        clean_db,
        "MATCH (n:FeatureNode)-[:INSTANCE_OF]->(f:Feature) "
        "RETURN count(n) AS n, sum(CASE WHEN n.label = f.label THEN 1 ELSE 0 END) AS same",
    )[0]
    assert labelled["n"] > 0 and labelled["same"] == labelled["n"]
    again = CliRunner().invoke(app, ["demo", "--limit", str(n), "--threads", "1"])
    assert again.exit_code == 0, again.output
    assert "cached: model, clt, catalogue, checks" in again.output
    count = query(clean_db, "MATCH (g:Graph) RETURN count(g) AS n")[0]["n"]
    assert count == n
