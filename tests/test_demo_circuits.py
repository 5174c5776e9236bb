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

# What the default demo reaches (see the report of `circuitmap demo`); the checks must stay above.
MIN_TWO_HOP_PASSED = {"train": 0.6, "heldout": 0.5}
MIN_ADDITION_PASSED = 0.5
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
    for split, minimum in MIN_TWO_HOP_PASSED.items():
        assert checks["two_hop"][split]["passed"] >= minimum, checks["two_hop"]
    assert checks["addition"]["all"]["passed"] >= MIN_ADDITION_PASSED, checks["addition"]


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
        # Negative controls: the graph without the state's features has no such path; the other
        # state's features are not on the path; ablating without injecting names no other capital.
        removed += bool(features_on_path(without_features(record, own), {city}, answer, own))
        wrong_state += bool(features_on_path(record, {city}, answer, other))
        donor = checker.donor(result.swap_state, prompt["text"], city)
        ablated = swap_prediction(builder, prompt["text"], donor, own, set())
        ablated_only += ablated == result.swap_answer
    n = len(prompts)
    assert passed >= min(MIN_TWO_HOP_PASSED.values()) * n
    assert removed == 0
    assert wrong_state <= 0.2 * n
    assert ablated_only <= 0.2 * n


def test_addition_units_features_are_on_the_path_and_specific(
    demo: DemoBuild, builder: GraphBuilder, concepts: Concepts
):
    prompts = _sample(demo, "addition")
    passed = other_digit = 0
    for prompt in prompts:
        record = builder.build(prompt["text"])
        result = check_addition(prompt, record, concepts)
        passed += result.passed
        digit = int(result.answer) % 10
        wrong = {k for k, d in concepts.units.items() if d == (digit + 5) % 10}
        sources = {str(result.a), str(result.b)}
        other_digit += bool(features_on_path(record, sources, result.answer, wrong))
        assert not check_addition(
            prompt, without_features(record, concepts.units), concepts
        ).passed
    assert passed >= MIN_ADDITION_PASSED * len(prompts)
    assert other_digit < passed


def test_catalogue_entries_are_complete(demo: DemoBuild):
    cards = load_catalogue(demo.catalogue_dir)
    tc_config = load_corpus(demo.model_dir)  # the corpus the contexts come from
    assert tc_config is not None
    layers = {c.layer for c in cards}
    assert len(cards) == len(layers) * (max(c.index for c in cards) + 1)
    live = [c for c in cards if c.density > 0]
    assert len(live) >= 0.5 * len(cards)
    for card in live:
        assert card.label and card.top_contexts and len(card.top_logits) == 10
        assert len(card.bottom_logits) == 10
        assert card.top_logit_effects == sorted(card.top_logit_effects, reverse=True)
        assert 0 < card.density <= 1 and card.max_activation > 0
        best = [max(c.activations) for c in card.top_contexts]
        assert best == sorted(best, reverse=True)
        assert abs(best[0] - card.max_activation) < 1e-3
        for context in card.top_contexts:
            assert len(context.tokens) == len(context.activations) > 0
    dead = [c for c in cards if c.density == 0]
    assert all(not c.top_contexts for c in dead)
