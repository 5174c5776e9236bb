"""Suggestion's grouping: on synthetic corpora with planted concept groups (no database), and on
the demo's two-hop and addition graphs in Neo4j, judged by the demo's own concept rules."""

from __future__ import annotations

import numpy as np
import pytest

from bench.corpus import concept_recovery
from circuitmap.demo.circuits import Concepts
from circuitmap.demo.concepts import DemoWorld
from circuitmap.demo.corpus import load_corpus
from circuitmap.grouping import (
    CorpusFeatures,
    GroupingSettings,
    SimilarityWeights,
    combined_similarity,
    cooccurrence,
    group_features,
    group_label,
    logit_effect_similarity,
)
from tests.demo_graphs import compute_sample, write_sample
from tests.query_helpers import handle_of


def planted_corpus(
    n_concepts: int = 12,
    per_concept: int = 6,
    n_generic: int = 10,
    n_noise: int = 60,
    graphs_per_concept: int = 8,
    seed: int = 0,
    directions: bool = True,
) -> tuple[CorpusFeatures, list[set[int]]]:
    """Each graph is about one concept: that concept's features fire in it (each with p 0.85),
    generic features fire everywhere (p 0.9), noise features anywhere (p 0.08). Corpus edges join
    features firing together; concept features share a direction, and so do generic ones."""
    rng = np.random.default_rng(seed)
    n = n_concepts * per_concept + n_generic + n_noise
    g = n_concepts * graphs_per_concept
    presence = np.zeros((g, n), dtype=bool)
    planted = [set(range(c * per_concept, (c + 1) * per_concept)) for c in range(n_concepts)]
    generic = range(n_concepts * per_concept, n_concepts * per_concept + n_generic)
    noise = range(n - n_noise, n)
    for row in range(g):
        concept = row // graphs_per_concept
        for i in planted[concept]:
            presence[row, i] = rng.random() < 0.85
        for i in generic:
            presence[row, i] = rng.random() < 0.9
        for i in noise:
            presence[row, i] = rng.random() < 0.08
    both = presence.T.astype(np.float32) @ presence.astype(np.float32)
    edge_graphs = np.floor(both * rng.uniform(0.2, 0.6, size=both.shape))
    vectors = None
    if directions:
        centers = rng.normal(size=(n_concepts + 1, 32))
        vectors = rng.normal(scale=0.7, size=(n, 32))
        for c, members in enumerate(planted):
            vectors[list(members)] += centers[c]
        vectors[list(generic)] += centers[n_concepts]
    labels = [
        f"concept {i // per_concept}" if i < n_concepts * per_concept else "" for i in range(n)
    ]
    uids = [f"clt/{i % 4}/{i}" for i in range(n)]
    return CorpusFeatures(uids, labels, presence, edge_graphs, vectors), planted


def purity_and_recall(groups, planted: list[set[int]]) -> list[tuple[float, float]]:
    """For each planted group: (purity, recall) of the suggestion that holds most of it."""
    out = []
    for concept in planted:
        best = max(groups, key=lambda g: len(concept & set(g.members)))
        hit = len(concept & set(best.members))
        out.append((hit / len(best.members), hit / len(concept)))
    return out


@pytest.mark.parametrize("directions", [True, False])
def test_recovers_planted_groups(directions: bool) -> None:
    corpus, planted = planted_corpus(directions=directions)
    groups = group_features(corpus, GroupingSettings(seed=0))
    scores = purity_and_recall(groups, planted)
    recovered = [p >= 0.8 and r >= 0.8 for p, r in scores]
    assert sum(recovered) >= 11, scores  # of 12 planted groups
    by_concept = {g.label for g in groups if g.label.startswith("concept")}
    assert len(by_concept) >= 11
    for group in groups:
        assert 0.0 <= group.cohesion <= 1.0
        assert 0.0 < group.coverage <= 1.0
    generic = set(range(72, 82))  # the features firing in every graph group together
    assert any(generic <= set(g.members) for g in groups)


def test_same_seed_same_groups_and_coverage_counts_graphs() -> None:
    corpus, _ = planted_corpus(n_concepts=4, seed=3)
    first = group_features(corpus, GroupingSettings(seed=5))
    second = group_features(corpus, GroupingSettings(seed=5))
    assert [g.members for g in first] == [g.members for g in second]
    group = first[0]
    expected = corpus.presence[:, group.members].any(axis=1).mean()
    assert group.coverage == pytest.approx(expected)


def test_similarities_and_weights() -> None:
    presence = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=bool)
    jaccard = cooccurrence(presence)
    assert jaccard[0, 1] == pytest.approx(2 / 3)
    assert jaccard[0, 2] == 0.0
    corpus = CorpusFeatures(["a", "b", "c"], ["", "", ""], presence, np.zeros((3, 3)))
    only_cooccurrence = combined_similarity(corpus, SimilarityWeights(1.0, 0.0, 0.0))
    assert only_cooccurrence[0, 1] == pytest.approx(2 / 3)
    assert np.all(np.diag(only_cooccurrence) == 0)
    with pytest.raises(ValueError, match="weights"):
        combined_similarity(corpus, SimilarityWeights(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="same features"):
        CorpusFeatures(["a"], ["", ""], presence, np.zeros((1, 1)))


def test_label_is_the_most_common_concept_of_its_members() -> None:
    labels = ["state texas · reads dallas", "say austin (texas) · x", "state texas · y", ""]
    assert group_label(labels) == "state texas"
    assert group_label(["", ""]) == ""
    assert group_features(CorpusFeatures([], [], np.zeros((3, 0), bool), np.zeros((0, 0)))) == []


def twin_concepts(seed: int = 0) -> tuple[CorpusFeatures, list[set[int]]]:
    """Pairs of concepts that always fire together (a "state" and its "say capital" features, in
    the same prompts) but say different things: co-occurrence and corpus edges cannot tell the
    twins apart, their logit effects can. Each feature promotes its concept's two tokens (with
    noise) and a random token of a shared pool."""
    rng = np.random.default_rng(seed)
    n_pairs, per_concept, graphs_per_pair = 6, 5, 10
    n = 2 * n_pairs * per_concept
    presence = np.zeros((n_pairs * graphs_per_pair, n), dtype=bool)
    planted = [set(range(c * per_concept, (c + 1) * per_concept)) for c in range(2 * n_pairs)]
    effects = []
    for c, members in enumerate(planted):
        rows = slice((c // 2) * graphs_per_pair, (c // 2 + 1) * graphs_per_pair)
        for i in members:
            presence[rows, i] = rng.random(graphs_per_pair) < 0.9
            effects.append(
                {
                    f"tok{c}a": 1.0 + rng.normal(scale=0.1),
                    f"tok{c}b": 0.8 + rng.normal(scale=0.1),
                    f"pool{rng.integers(8)}": 0.3,
                    f"neg{c}": -0.5,
                }
            )
    both = presence.T.astype(np.float32) @ presence.astype(np.float32)
    edge_graphs = np.floor(both * 0.3)
    uids = [f"clt/0/{i}" for i in range(n)]
    return CorpusFeatures(uids, [""] * n, presence, edge_graphs, logit_effects=effects), planted


def test_logit_effects_split_concepts_that_fire_together() -> None:
    corpus, planted = twin_concepts()
    without = group_features(corpus, GroupingSettings(weights=SimilarityWeights(logit_effects=0.0)))
    with_effects = group_features(corpus, GroupingSettings())
    pure = [p >= 0.8 and r >= 0.8 for p, r in purity_and_recall(with_effects, planted)]
    merged = [p >= 0.8 for p, _ in purity_and_recall(without, planted)]
    assert sum(pure) >= 11, purity_and_recall(with_effects, planted)  # of 12 concepts
    assert sum(merged) <= 2  # without logit effects the twins share one group


def test_logit_effect_similarity_is_a_clipped_cosine_over_tokens() -> None:
    effects = [{"a": 1.0, "b": 1.0}, {"a": 2.0}, {"a": -1.0}, {}, {"c": 3.0, "b": 4.0}]
    sim = logit_effect_similarity(effects)
    assert sim[0, 1] == pytest.approx(1 / np.sqrt(2), rel=1e-6)
    assert sim[0, 2] == 0.0  # opposite effects: clipped
    assert np.all(sim[3] == 0.0)  # no effects known: similar to nothing
    assert sim[0, 4] == pytest.approx(4 / (np.sqrt(2) * 5), rel=1e-6)
    assert np.allclose(sim, sim.T)
    presence = np.ones((2, 5), dtype=bool)
    corpus = CorpusFeatures(list("abcde"), [""] * 5, presence, np.zeros((5, 5)))
    assert not corpus.has_logit_effects
    with pytest.raises(ValueError, match="one entry per feature"):
        CorpusFeatures(list("abcde"), [""] * 5, presence, np.zeros((5, 5)), logit_effects=[{}])


# What `python -m bench.corpus demo` measured with the default settings (docs/corpus.md): 4 of
# the 20 states and 8 of the 10 units digits. The demo's weights differ between machines (their
# circuits with them), so the bounds leave a margin of one state and two digits.
MIN_STATES_RECOVERED = 3
MIN_DIGITS_RECOVERED = 6


def pair_rows(driver, uids: list[str]) -> np.ndarray:
    """The corpus edges among `uids` read one row per pair (as the corpus circuit reads them):
    what suggestion reads as lists of pair keys must be the same."""
    from queries.corpus import cypher

    column = {uid: i for i, uid in enumerate(uids)}
    out = np.zeros((len(uids), len(uids)), dtype=np.float32)
    for rec in handle_of(driver).read(cypher("feature_pairs"), {"uids": uids}):
        out[column[rec["source"]], column[rec["target"]]] = rec["n_graphs"]
    return out


def test_demo_suggestions_recover_states_and_digits(clean_db, demo, builder) -> None:
    from queries.corpus import suggest_supernodes, suggestion_inputs

    sample = compute_sample(demo, builder, {"two_hop": 100, "addition": 100})
    write_sample(clean_db, sample)
    world = DemoWorld.of(load_corpus(demo.model_dir).config)
    concepts = Concepts.of(demo.cards(), world)
    wanted = {
        "two_hop": ({s: concepts.features_of_state(s) for s in world.states}, MIN_STATES_RECOVERED),
        "addition": (
            {str(u): concepts.features_of_units(u) for u in range(10)},
            MIN_DIGITS_RECOVERED,
        ),
    }
    for tag, (features_of, minimum) in wanted.items():
        inputs = suggestion_inputs(handle_of(clean_db), tag)
        assert np.array_equal(inputs.corpus.edge_graphs, pair_rows(clean_db, inputs.corpus.uids))
        suggestions = suggest_supernodes(inputs, transcoder=builder.rm.transcoder)
        on_paths = {(int(layer), int(index)) for layer, index in inputs.keys}
        recovery = concept_recovery(suggestions, features_of, on_paths)
        recovered = [r.concept for r in recovery if r.recovered]
        assert len(recovered) >= minimum, (tag, [(r.concept, r.purity) for r in recovery])
        assert all(s.label is not None and 0 < s.group.coverage <= 1 for s in suggestions)
