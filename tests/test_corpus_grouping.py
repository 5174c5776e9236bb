"""Suggestion's grouping on a synthetic corpus with planted concept groups (no database)."""

from __future__ import annotations

import numpy as np
import pytest

from circuitmap.grouping import (
    CorpusFeatures,
    GroupingSettings,
    SimilarityWeights,
    combined_similarity,
    cooccurrence,
    group_features,
    group_label,
)


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
    features firing together; concept features share a direction."""
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
