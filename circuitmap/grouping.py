"""Group features that act together across a corpus into candidate supernodes.

Arrays in, groups out (no database): the caller gives, for the features on answer paths of a set
of graphs, which graphs each one is active in, the corpus edges between them and, optionally, a
direction per feature (its decoder) and its logit effects (from the catalogue). Up to four
similarities, each in [0, 1], are combined as a weighted mean (a term without its data is left
out and the others renormalised):

- *co-occurrence*: the Jaccard index of the sets of graphs the two features are active in
  (features of one concept fire in the same prompts, and only there);
- *corpus edges*: the graphs in which the pair is joined by an edge (either direction, the
  corpus aggregate `AGG_ATTR`), as a share of the graphs in which either of the two is active;
- *direction*: the cosine of the two decoder directions, negatives clipped to 0;
- *logit effects*: the cosine of the features' direct effects on the output tokens (the
  catalogue's strongest positive and negative logit effects, a sparse vector over tokens),
  negatives clipped to 0: features of one concept promote and suppress the same tokens.

Only each feature's strongest neighbours are kept (`neighbours`, and at least `min_similarity`),
which makes a sparse graph, and its communities (Louvain modularity, networkx, fixed seed) are the
groups; groups smaller than `min_size` are dropped. A group's cohesion is the mean combined
similarity over its member pairs, and its label the most common concept among its members' labels
(the text before " · " in a label, as catalogue labels are "concept · what it reads and says").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import networkx as nx
import numpy as np

LABEL_SEPARATOR = " · "


@dataclass(frozen=True)
class SimilarityWeights:
    """How much each similarity counts in the combination (normalised to sum to 1)."""

    cooccurrence: float = 1.0
    corpus_edges: float = 0.5
    direction: float = 1.0
    logit_effects: float = 1.0

    def normalised(
        self, has_direction: bool, has_logit_effects: bool = False
    ) -> tuple[float, float, float, float]:
        """(co-occurrence, corpus edges, direction, logit effects), summing to 1; a term whose
        data is missing counts 0."""
        parts = [
            self.cooccurrence,
            self.corpus_edges,
            self.direction if has_direction else 0.0,
            self.logit_effects if has_logit_effects else 0.0,
        ]
        if min(parts) < 0 or sum(parts) <= 0:
            raise ValueError(f"similarity weights must be >= 0 and not all 0, got {self}")
        total = sum(parts)
        wc, we, wd, wl = (p / total for p in parts)
        return wc, we, wd, wl


@dataclass(frozen=True)
class GroupingSettings:
    weights: SimilarityWeights = SimilarityWeights()
    neighbours: int = 10  # strongest neighbours kept per feature
    min_similarity: float = 0.5  # weaker pairs are no edge at all
    resolution: float = 1.0  # Louvain resolution: larger makes smaller groups
    min_size: int = 2
    seed: int = 0


@dataclass
class CorpusFeatures:
    """The features to group and what the corpus says about them (n features, g graphs)."""

    uids: list[str]
    labels: list[str]
    presence: np.ndarray  # [g, n] bool: the feature is active in the graph
    edge_graphs: np.ndarray  # [n, n] graphs with an edge between the pair (either direction)
    directions: np.ndarray | None = None  # [n, d] decoder directions, or None
    # per feature, token -> direct logit effect (its strongest ones), or None
    logit_effects: list[dict[str, float]] | None = None

    def __post_init__(self) -> None:
        n = len(self.uids)
        if len(self.labels) != n or self.presence.ndim != 2 or self.presence.shape[1] != n:
            raise ValueError("uids, labels and presence columns must describe the same features")
        if self.edge_graphs.shape != (n, n):
            raise ValueError(f"edge_graphs must be {n} x {n}, got {self.edge_graphs.shape}")
        if self.directions is not None and self.directions.shape[0] != n:
            raise ValueError("directions must have one row per feature")
        if self.logit_effects is not None and len(self.logit_effects) != n:
            raise ValueError("logit_effects must have one entry per feature")

    @property
    def has_logit_effects(self) -> bool:
        return self.logit_effects is not None and any(self.logit_effects)


@dataclass
class FeatureGroup:
    """A suggested supernode: member indices into `CorpusFeatures.uids`, strongest first."""

    members: list[int]
    label: str
    cohesion: float  # mean combined similarity over member pairs, in [0, 1]
    coverage: float  # share of the graphs in which some member is active


def cooccurrence(presence: np.ndarray) -> np.ndarray:
    """Jaccard index of the features' graph sets, [n, n] (0 where neither is active)."""
    x = presence.astype(np.float32)
    both = x.T @ x
    counts = x.sum(axis=0)
    either = counts[:, None] + counts[None, :] - both
    return np.divide(both, either, out=np.zeros_like(both), where=either > 0)


def edge_similarity(edge_graphs: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """Graphs joining the pair by an edge over the graphs where either is active (like the
    Jaccard index: a rare feature always joined to a common one is not its twin)."""
    x = presence.astype(np.float32)
    counts = x.sum(axis=0)
    either = counts[:, None] + counts[None, :] - x.T @ x
    joined = np.maximum(edge_graphs, edge_graphs.T).astype(np.float32)
    share = np.divide(joined, either, out=np.zeros_like(joined), where=either > 0)
    return np.clip(share, 0.0, 1.0)


def direction_similarity(directions: np.ndarray) -> np.ndarray:
    """Cosine of the directions, negatives clipped to 0."""
    d = directions.astype(np.float32)
    norms = np.linalg.norm(d, axis=1, keepdims=True)
    unit = np.divide(d, norms, out=np.zeros_like(d), where=norms > 0)
    return np.clip(unit @ unit.T, 0.0, 1.0)


SHARED_TOKEN_COLUMNS = 32  # a token listed by more features than this is a dense column


def logit_effect_similarity(effects: list[dict[str, float]]) -> np.ndarray:
    """Cosine of the features' logit effects as sparse vectors over tokens, negatives clipped to
    0, [n, n]. Tokens listed by many features form a dense block (one matrix product); each of
    the others adds the outer product of its few features' effects. The vocabulary's size does
    not count, only the tokens the features list."""
    n = len(effects)
    norms = np.array([np.sqrt(sum(v * v for v in e.values())) for e in effects], np.float32)
    by_token: dict[str, tuple[list[int], list[float]]] = {}
    for row, found in enumerate(effects):
        for token, value in found.items():
            rows, values = by_token.setdefault(token, ([], []))
            rows.append(row)
            values.append(value)
    dot = np.zeros((n, n), dtype=np.float32)
    common = [t for t, (rows, _) in by_token.items() if len(rows) > SHARED_TOKEN_COLUMNS]
    if common:
        block = np.zeros((n, len(common)), dtype=np.float32)
        for column, token in enumerate(common):
            rows, values = by_token.pop(token)
            block[rows, column] = values
        dot += block @ block.T
    for rows, values in by_token.values():
        if len(rows) > 1:
            v = np.asarray(values, dtype=np.float32)
            dot[np.ix_(rows, rows)] += np.outer(v, v)
    scale = np.outer(norms, norms).astype(np.float32)
    cosine = np.divide(dot, scale, out=np.zeros_like(dot), where=scale > 0)
    return np.clip(cosine, 0.0, 1.0)


def combined_similarity(features: CorpusFeatures, weights: SimilarityWeights) -> np.ndarray:
    """The weighted mean of the similarities, [n, n] with a zero diagonal."""
    wc, we, wd, wl = weights.normalised(features.directions is not None, features.has_logit_effects)
    sim = wc * cooccurrence(features.presence)
    if we:
        sim += we * edge_similarity(features.edge_graphs, features.presence)
    if wd and features.directions is not None:
        sim += wd * direction_similarity(features.directions)
    if wl and features.logit_effects is not None:
        sim += wl * logit_effect_similarity(features.logit_effects)
    np.fill_diagonal(sim, 0.0)
    return sim


def sparse_graph(similarity: np.ndarray, neighbours: int, min_similarity: float) -> nx.Graph:
    """Each feature joined to its `neighbours` most similar features (at least min_similarity)."""
    n = similarity.shape[0]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    if n < 2:
        return graph
    k = min(neighbours, n - 1)
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    cols = nearest.ravel()
    values = similarity[rows, cols]
    keep = values >= min_similarity
    graph.add_weighted_edges_from(
        zip(rows[keep].tolist(), cols[keep].tolist(), values[keep].tolist(), strict=True)
    )
    return graph


def group_features(
    features: CorpusFeatures, settings: GroupingSettings | None = None
) -> list[FeatureGroup]:
    """Candidate supernodes, the most cohesive first (see the module docstring)."""
    settings = settings or GroupingSettings()
    if not features.uids:
        return []
    similarity = combined_similarity(features, settings.weights)
    graph = sparse_graph(similarity, settings.neighbours, settings.min_similarity)
    communities = nx.community.louvain_communities(
        graph, weight="weight", resolution=settings.resolution, seed=settings.seed
    )
    presence = features.presence.astype(bool)
    activity = presence.sum(axis=0)
    groups = []
    for community in communities:
        if len(community) < settings.min_size:
            continue
        members = sorted(community, key=lambda i: (-activity[i], features.uids[i]))
        block = similarity[np.ix_(members, members)]
        pairs = len(members) * (len(members) - 1)
        cohesion = float(block.sum() / pairs) if pairs else 0.0
        coverage = float(presence[:, members].any(axis=1).mean()) if len(presence) else 0.0
        label = group_label([features.labels[i] for i in members])
        groups.append(FeatureGroup(members, label, cohesion, coverage))
    groups.sort(key=lambda g: (-g.cohesion, -len(g.members), g.members[0]))
    return groups


def group_label(labels: list[str]) -> str:
    """The most common concept among member labels (ties: the first member's), or ""."""
    heads = [label.split(LABEL_SEPARATOR)[0].strip() for label in labels if label]
    heads = [h for h in heads if h]
    if not heads:
        return ""
    counts = Counter(heads)
    best = max(counts.values())
    return next(h for h in heads if counts[h] == best)


def decoder_directions(transcoder, keys: list[tuple[int, int]]) -> np.ndarray:
    """[n, d] each feature's total write into the residual stream: its decoder vectors summed
    over the layers it writes to. `keys` are (layer, index) pairs."""
    d = transcoder.d_model
    out = np.zeros((len(keys), d), dtype=np.float32)
    by_layer: dict[int, list[int]] = {}
    for row, (layer, _) in enumerate(keys):
        by_layer.setdefault(layer, []).append(row)
    for layer, rows in by_layer.items():
        ids = [keys[r][1] for r in rows]
        vectors = transcoder.decoder_vectors(layer, ids)  # [k, n_out, d]
        out[rows] = vectors.sum(dim=1).detach().float().cpu().numpy()
    return out
