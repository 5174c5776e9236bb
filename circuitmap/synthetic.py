"""Realistic random attribution graphs, for tests and benchmarks of everything downstream.

Graphs look like pruned graphs of a small model: a BOS and the prompt's words as token nodes,
features over all layers (concentrated on later positions), error nodes, up to 10 logits at the last
position, and edges that respect causality (source layer < target layer, source position <= target
position) with a heavy-tailed fan-in and signed, heavy-tailed weights. Feature indices are shared
across graphs: a word tends to activate the same features wherever it appears, and the rest follow
a Zipf law over the catalogue, so corpus aggregates (features seen in many graphs, recurring
feature-to-feature edges) are meaningful. Everything is seeded by the prompt text, so the same
prompt always gives the same graph. Node influences follow the pipeline's convention: each token,
feature and error node gets the cumulative share of a latent importance held by the nodes ranked up
to and including it (in (0, 1], smaller = more influential); logits carry only their probability.

`synthetic_prompts` makes a small two-hop / one-hop / addition corpus in the demo world's style.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from circuitmap.records import (
    GraphRecord,
    NodeRecord,
    error_node_id,
    feature_node_id,
    logit_node_id,
    token_node_id,
)

BOS = "<bos>"
STATES = {
    "texas": ("austin", ["dallas", "houston", "lubbock"]),
    "california": ("sacramento", ["oakland", "fresno", "irvine"]),
    "illinois": ("springfield", ["chicago", "peoria", "aurora"]),
    "georgia": ("atlanta", ["savannah", "macon", "augusta"]),
    "ohio": ("columbus", ["cleveland", "dayton", "akron"]),
    "oregon": ("salem", ["portland", "eugene", "bend"]),
    "nevada": ("carson", ["reno", "henderson", "elko"]),
    "florida": ("tallahassee", ["miami", "tampa", "orlando"]),
}
TEMPLATE_WORDS = ["the", "capital", "of", "state", "containing", "is", "in", "calc", ":", "+", "="]
DEFAULT_VOCAB: tuple[str, ...] = tuple(
    dict.fromkeys(
        [BOS, *TEMPLATE_WORDS]
        + [w for s, (c, cities) in STATES.items() for w in (s, c, *cities)]
        + [str(i) for i in range(199)]
    )
)


@dataclass
class SyntheticConfig:
    """Shape of the generated graphs. Edge counts are capped by the causally possible pairs."""

    n_layers: int = 4
    catalog_size: int = 4096  # transcoder features per layer
    n_features: int = 300  # active feature nodes per graph
    n_edges: int = 20_000
    max_logits: int = 10
    error_fraction: float = 0.3  # share of (layer, position) slots holding an error node
    token_bound: float = 0.5  # share of features tied to the word at their position
    zipf: float = 1.1  # popularity skew of the other features
    vocab: tuple[str, ...] = DEFAULT_VOCAB
    seed: int = 0


class SyntheticGraphs:
    """A `compute(prompt) -> GraphRecord` stand-in for the real attribution pipeline.

    Takes the same arguments as the real graph builder (model, transcoders, settings), so the CLI
    and the ingest worker can use either. `answers` maps prompt text to the answer put on the top
    logit; `max_tokens` rejects longer prompts, as a real tokenizer-aware check would.
    """

    def __init__(
        self,
        model: str | None = None,
        transcoders: str | None = None,
        settings: dict[str, object] | None = None,
        config: SyntheticConfig | None = None,
        answers: dict[str, str] | None = None,
        max_tokens: int = 64,
    ):
        self.model = model or "synthetic-model"
        self.transcoder = transcoders or "synthetic-clt"
        self.config = config or SyntheticConfig()
        self.settings = {
            "generator": "synthetic",
            "n_features": self.config.n_features,
            "n_edges": self.config.n_edges,
            **(settings or {}),
        }
        self.answers = answers or {}
        self.max_tokens = max_tokens

    def __call__(self, prompt: str) -> GraphRecord:
        n_tokens = len(prompt.split()) + 1
        if n_tokens > self.max_tokens:
            raise ValueError(
                f"prompt has {n_tokens} tokens, more than the maximum {self.max_tokens}"
            )
        graph = synthetic_graph(
            prompt,
            self.config,
            answer=self.answers.get(prompt),
            model=self.model,
            transcoder=self.transcoder,
        )
        graph.settings = dict(self.settings)
        return graph


def synthetic_graph(
    prompt: str,
    config: SyntheticConfig | None = None,
    *,
    answer: str | None = None,
    model: str = "synthetic-model",
    transcoder: str = "synthetic-clt",
) -> GraphRecord:
    """One graph for `prompt` (whitespace-tokenised), deterministic in (prompt, config.seed)."""
    cfg = config or SyntheticConfig()
    digest = hashlib.sha256(f"{cfg.seed}\0{prompt}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    words = [BOS, *prompt.split()]
    ids = [_token_id(w, cfg.vocab) for w in words]
    n_pos, n_layers = len(words), cfg.n_layers

    latent: list[float] = []  # importance of each token, feature and error node, in node order
    nodes: list[NodeRecord] = []
    for p, (w, t) in enumerate(zip(words, ids, strict=True)):
        nodes.append(NodeRecord(token_node_id(t, p), "token", -1, p, w, t))
        latent.append(_importance(rng))
    for layer, index, pos in _features(rng, cfg, words):
        word = words[pos]
        nodes.append(
            NodeRecord(
                feature_node_id(layer, index, pos),
                "feature",
                layer,
                pos,
                word,
                index,
                activation=float(rng.gamma(2.0, 1.5)),
                label=_feature_label(layer, index, cfg),
            )
        )
        latent.append(_importance(rng))
    for layer in range(n_layers):
        for pos in range(n_pos):
            if pos == n_pos - 1 or rng.random() < cfg.error_fraction:
                nodes.append(NodeRecord(error_node_id(layer, pos), "error", layer, pos, words[pos]))
                latent.append(_importance(rng))
    for node, share in zip(nodes, _cumulative_shares(np.array(latent)), strict=True):
        node.influence = share
    for word, token_id, prob in _logits(rng, cfg, answer):
        nodes.append(
            NodeRecord(
                logit_node_id(n_layers, token_id, n_pos - 1),
                "logit",
                n_layers,
                n_pos - 1,
                word,
                token_id,
                probability=prob,
            )
        )

    source, target, weight = _edges(rng, nodes, cfg.n_edges)
    return GraphRecord(
        prompt=prompt,
        prompt_tokens=words,
        model=model,
        transcoder=transcoder,
        nodes=nodes,
        edge_source=source,
        edge_target=target,
        edge_weight=weight,
        n_layers=n_layers,
        scores={
            "replacement": float(rng.uniform(0.5, 0.75)),
            "completeness": float(rng.uniform(0.75, 0.9)),
        },
        settings={},
        metadata={"generator": "circuitmap.synthetic", "seed": cfg.seed},
    )


def synthetic_prompts(n: int, seed: int = 0) -> list[dict[str, object]]:
    """`n` corpus rows (`id`, `text`, `tags`, `answer`) of two-hop, one-hop and addition prompts."""
    rng = np.random.default_rng(seed)
    cities = [(city, state, cap) for state, (cap, cs) in STATES.items() for city in cs]
    rows: list[dict[str, object]] = []
    for i in range(n):
        kind = ("two-hop", "one-hop", "addition")[i % 3]
        if kind == "addition":
            a, b = (int(x) for x in rng.integers(0, 100, 2))
            text, answer = f"calc : {a} + {b} =", str(a + b)
        else:
            city, state, cap = cities[int(rng.integers(len(cities)))]
            if kind == "two-hop":
                text, answer = f"the capital of the state containing {city} is", cap
            else:
                text, answer = f"{city} is in", state
        rows.append({"id": f"p{seed}-{i:06d}", "text": text, "tags": [kind], "answer": answer})
    return rows


def _token_id(word: str, vocab: tuple[str, ...]) -> int:
    try:
        return vocab.index(word)
    except ValueError:
        return (
            len(vocab) + int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % 997
        )


def _importance(rng: np.random.Generator) -> float:
    """A node's latent influence on the logits: heavy-tailed, a few nodes hold most of it."""
    return float(rng.lognormal(-4.0, 1.5))


def _cumulative_shares(importance: np.ndarray) -> list[float]:
    """Each node's share of the total importance held by the nodes ranked (most important first)
    up to and including it, as circuitmap.pruning computes `cumulative_scores`."""
    order = np.argsort(-importance, kind="stable")
    shares = np.empty_like(importance)
    shares[order] = np.cumsum(importance[order]) / importance.sum()
    return shares.tolist()


def _features(
    rng: np.random.Generator, cfg: SyntheticConfig, words: list[str]
) -> list[tuple[int, int, int]]:
    """Distinct (layer, index, position) triples, later positions more often."""
    n_pos = len(words)
    pos_weight = np.arange(1, n_pos + 1, dtype=float) ** 1.5
    pos_weight[0] = 0.0 if n_pos > 1 else 1.0  # circuit-tracer zeroes BOS features
    pos_weight /= pos_weight.sum()
    zipf = 1.0 / np.arange(1, cfg.catalog_size + 1) ** cfg.zipf
    zipf /= zipf.sum()
    capacity = cfg.n_layers * cfg.catalog_size * n_pos
    want = min(cfg.n_features, capacity)
    found: dict[tuple[int, int, int], None] = {}
    while len(found) < want:
        m = 2 * (want - len(found))
        layers = rng.integers(0, cfg.n_layers, m)
        positions = rng.choice(n_pos, m, p=pos_weight)
        ranks = rng.choice(cfg.catalog_size, m, p=zipf)
        bound = rng.random(m) < cfg.token_bound
        for layer, pos, rank, is_bound in zip(layers, positions, ranks, bound, strict=True):
            key = f"{words[pos]}/{layer}" if is_bound else f"rank/{layer}/{rank}"
            index = _stable_index(key, int(rank) if is_bound else 0, cfg.catalog_size)
            found.setdefault((int(layer), index, int(pos)), None)
            if len(found) == want:
                break
    return list(found)


def _stable_index(key: str, salt: int, size: int) -> int:
    """The catalogue index a (word, layer) or (rank, layer) stands for; the same in every graph."""
    digest = hashlib.sha256(f"{key}/{salt % 3}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % size


def _feature_label(layer: int, index: int, cfg: SyntheticConfig) -> str:
    word = cfg.vocab[(index * 7919 + layer) % len(cfg.vocab)]
    return f"{word!r}-like context, layer {layer}"


def _logits(
    rng: np.random.Generator, cfg: SyntheticConfig, answer: str | None
) -> list[tuple[str, int, float]]:
    k = int(rng.integers(1, cfg.max_logits + 1))
    words = list(rng.choice(len(cfg.vocab), min(k, len(cfg.vocab)), replace=False))
    chosen = [cfg.vocab[i] for i in words]
    if answer is not None:
        chosen = [answer] + [w for w in chosen if w != answer][: k - 1]
    probs = np.sort(rng.dirichlet(np.full(len(chosen), 0.7)))[::-1] * rng.uniform(0.8, 0.97)
    return [(w, _token_id(w, cfg.vocab), float(p)) for w, p in zip(chosen, probs, strict=True)]


def _edges(
    rng: np.random.Generator, nodes: list[NodeRecord], n_edges: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_edges` distinct causal (source, target) pairs, weighted toward strong targets/sources."""
    layer = np.array([n.layer for n in nodes])
    pos = np.array([n.position for n in nodes])
    kind = np.array([n.kind for n in nodes])
    sources = np.flatnonzero(kind != "logit")
    targets = np.flatnonzero((kind == "feature") | (kind == "logit"))
    s, t = np.meshgrid(sources, targets, indexing="xy")
    s, t = s.ravel(), t.ravel()
    ok = (layer[s] < layer[t]) & (pos[s] <= pos[t])
    s, t = s[ok], t[ok]
    fan_in = rng.lognormal(0.0, 1.0, len(nodes))  # some targets collect many inputs
    fan_out = rng.lognormal(0.0, 1.0, len(nodes))
    same_pos = np.where(pos[s] == pos[t], 2.0, 1.0)
    score = np.log(fan_in[t] * fan_out[s] * same_pos) + rng.gumbel(size=len(s))
    if n_edges < len(s):
        keep = np.argpartition(-score, n_edges)[:n_edges]
        s, t = s[keep], t[keep]
    order = np.lexsort((s, t))
    s, t = s[order], t[order]
    sign = np.where(rng.random(len(s)) < 0.7, 1.0, -1.0)
    weight = (sign * rng.lognormal(-3.0, 1.2, len(s)) * fan_in[t]).astype(np.float32)
    return s.astype(np.int64), t.astype(np.int64), weight


__all__ = [
    "DEFAULT_VOCAB",
    "SyntheticConfig",
    "SyntheticGraphs",
    "synthetic_graph",
    "synthetic_prompts",
]
