"""Hand-built two-hop graphs with a planted chain, and a brute-force path reference, for tests.

Each graph reads "the capital of the state containing CITY is" and holds the chain
city token -> state feature (layer 0, city position) -> capital feature (layer 2, last position)
-> capital logit, with strong weights, amid weaker random edges among distractor features. The
state and capital features use the same catalog index in every graph of that state, like a real
transcoder's features would.

The brute-force references enumerate, straight from a GraphRecord's edge arrays, what the path
queries (token_logit_paths, feature_chains, answer_path_features) must find in the database.
"""

from __future__ import annotations

import itertools

import numpy as np

from circuitmap.records import (
    GraphRecord,
    NodeRecord,
    error_node_id,
    feature_node_id,
    logit_node_id,
    token_node_id,
)
from ingest.payload import feature_uid as catalog_uid

N_LAYERS = 4
MODEL = "planted-model"
TRANSCODER = "planted-clt"
STATES = {"texas": ("austin", ["dallas", "houston"]), "california": ("sacramento", ["oakland"])}
STATE_INDEX = {"texas": 101, "california": 102}
CAPITAL_INDEX = {"texas": 201, "california": 202}
TEMPLATE = "the capital of the state containing {city} is"


def token_id(word: str) -> int:
    return sum(ord(c) for c in word) % 997


def state_of(city: str) -> str:
    return next(s for s, (_, cities) in STATES.items() if city in cities)


def two_hop_prompt(city: str) -> str:
    return TEMPLATE.format(city=city)


def planted_graph(
    city: str,
    seed: int = 0,
    n_distractors: int = 30,
    chain: tuple[float, float, float] = (4.0, 3.0, 5.0),
) -> GraphRecord:
    """A graph for `city` with the planted chain (edge weights `chain`) and random distractors."""
    rng = np.random.default_rng([seed, token_id(city)])
    state = state_of(city)
    capital = STATES[state][0]
    words = ["<bos>", *two_hop_prompt(city).split()]
    last, city_pos = len(words) - 1, words.index(city)
    nodes = [
        NodeRecord(token_node_id(token_id(w), p), "token", -1, p, w, token_id(w))
        for p, w in enumerate(words)
    ]

    def feature(layer: int, index: int, pos: int, label: str = "") -> int:
        nodes.append(
            NodeRecord(
                feature_node_id(layer, index, pos),
                "feature",
                layer,
                pos,
                words[pos],
                index,
                activation=float(rng.uniform(1, 5)),
                influence=float(rng.uniform(0, 0.2)),
                label=label,
            )
        )
        return len(nodes) - 1

    state_f = feature(0, STATE_INDEX[state], city_pos, f"{state} (state)")
    capital_f = feature(2, CAPITAL_INDEX[state], last, f"say {capital}")
    taken = {(0, STATE_INDEX[state], city_pos), (2, CAPITAL_INDEX[state], last)}
    while len(taken) < n_distractors + 2:
        layer, index = int(rng.integers(0, N_LAYERS)), int(rng.integers(300, 400))
        key = (layer, index, int(rng.integers(1, last + 1)))
        if key not in taken:
            taken.add(key)
            feature(*key, label="distractor")
    nodes.append(NodeRecord(error_node_id(1, last), "error", 1, last, words[last]))
    logits = {}
    for word, prob in ((capital, 0.6), ("the", 0.2), ("dallas", 0.1)):
        logits[word] = len(nodes)
        nodes.append(
            NodeRecord(logit_node_id(N_LAYERS, token_id(word), last), "logit", N_LAYERS, last,
                       word, token_id(word), influence=prob, probability=prob)
        )  # fmt: skip

    edges: dict[tuple[int, int], float] = {}
    for s in range(len(nodes)):
        for t in range(len(nodes)):
            a, b = nodes[s], nodes[t]
            causal = b.kind in ("feature", "logit") and a.kind != "logit"
            if causal and a.layer < b.layer and a.position <= b.position and rng.random() < 0.25:
                edges[s, t] = float(rng.normal(0, 0.3))
    city_token = words.index(city)
    edges[city_token, state_f], edges[state_f, capital_f], edges[capital_f, logits[capital]] = chain
    pairs = sorted(edges)
    return GraphRecord(
        prompt=two_hop_prompt(city),
        prompt_tokens=words,
        model=MODEL,
        transcoder=TRANSCODER,
        nodes=nodes,
        edge_source=np.array([s for s, _ in pairs], dtype=np.int64),
        edge_target=np.array([t for _, t in pairs], dtype=np.int64),
        edge_weight=np.array([edges[p] for p in pairs], dtype=np.float32),
        n_layers=N_LAYERS,
        scores={"replacement": 0.6, "completeness": 0.8},
        settings={"seed": seed},
    )


def edge_shares(graph: GraphRecord) -> dict[int, list[tuple[int, float]]]:
    """Per target node, its inputs as (source, share), share = |w| / (sum of |w| into the target):
    the normalisation the Cypher library's path strengths multiply."""
    weights = graph.edge_weight.astype(np.float64)
    into = np.zeros(len(graph.nodes))
    np.add.at(into, graph.edge_target, np.abs(weights))
    inputs: dict[int, list[tuple[int, float]]] = {}
    for s, t, w in zip(graph.edge_source, graph.edge_target, weights, strict=True):
        inputs.setdefault(int(t), []).append((int(s), abs(w) / into[t]))
    return inputs


def backward_paths(
    inputs: dict[int, list[tuple[int, float]]],
    head: int,
    max_hops: int,
    min_strength: float,
    ends: set[int],
    through: set[int],
) -> list[tuple[float, list[int]]]:
    """Every path of at most max_hops edges from a node in `ends` to `head` whose other nodes are
    in `through`, with strength (product of shares) >= min_strength, by plain enumeration;
    each path as (strength, nodes from its end to head)."""
    found: list[tuple[float, list[int]]] = []

    def walk(node: int, strength: float, path: list[int]) -> None:
        if len(path) > max_hops:
            return
        for source, share in inputs.get(node, []):
            s = strength * share
            if s < min_strength:
                continue
            if source in ends:
                found.append((s, [source, *path]))
            elif source in through:
                walk(source, s, [source, *path])

    walk(head, 1.0, [head])
    return found


def reference_paths(
    graph: GraphRecord, token: str, logit: str, min_hops: int, max_hops: int, min_strength: float
) -> list[tuple[float, list[str]]]:
    """Every token -> features -> logit path with strength >= min_strength, strongest first."""
    inputs, nodes = edge_shares(graph), graph.nodes
    starts = {i for i, n in enumerate(nodes) if n.kind == "token" and n.token == token}
    found = [
        (s, [nodes[i].node_id for i in path])
        for end, node in enumerate(nodes)
        if node.kind == "logit" and node.token == logit
        for s, path in backward_paths(
            inputs, end, max_hops, min_strength, starts, _kind(graph, "feature")
        )
        if len(path) - 1 >= min_hops
    ]
    return sorted(found, key=lambda item: -item[0])


def reference_chains(
    graph: GraphRecord,
    via: str,
    token: str | None,
    logit: str,
    max_up: int,
    max_down: int,
    min_strength: float,
) -> list[tuple[float, list[str]]]:
    """Every chain token -> features -> an instance v of catalog feature `via` -> features -> logit
    as feature_chains defines them, strongest first: the token at or before v (any token when
    None), the features after v above its layer and at or after its position, each half at most
    max_up / max_down edges and at least min_strength strong, and the chain too."""
    inputs, nodes = edge_shares(graph), graph.nodes
    found: list[tuple[float, list[str]]] = []
    for v, via_node in enumerate(nodes):
        if via_node.kind != "feature" or _uid(graph, via_node) != via:
            continue
        starts = {
            i
            for i in _kind(graph, "token")
            if nodes[i].position <= via_node.position and token in (None, nodes[i].token)
        }
        ups = backward_paths(inputs, v, max_up, min_strength, starts, _kind(graph, "feature"))
        after = {
            i
            for i in _kind(graph, "feature")
            if nodes[i].layer > via_node.layer and nodes[i].position >= via_node.position
        }
        downs = [
            found_down
            for end in _kind(graph, "logit")
            if nodes[end].token == logit
            for found_down in backward_paths(inputs, end, max_down, min_strength, {v}, after)
        ]
        for (s_up, up), (s_down, down) in itertools.product(ups, downs):
            if s_up * s_down >= min_strength:
                found.append((s_up * s_down, [nodes[i].node_id for i in up + down[1:]]))
    return sorted(found, key=lambda item: -item[0])


def reference_answer_features(
    graphs: list[GraphRecord], answers: list[str], max_hops: int, min_strength: float
) -> dict[str, tuple[int, float]]:
    """Per catalog feature on a path token -> features -> answer logit (at most max_hops edges, at
    least min_strength strong) in some of the graphs: (how many graphs, mean over those of its
    strongest such path), as answer_path_features counts them."""
    best: dict[str, list[float]] = {}
    for graph, answer in zip(graphs, answers, strict=True):
        inputs, nodes = edge_shares(graph), graph.nodes
        strongest: dict[str, float] = {}
        for end in _kind(graph, "logit"):
            if nodes[end].token != answer:
                continue
            tokens, features = _kind(graph, "token"), _kind(graph, "feature")
            for s, path in backward_paths(inputs, end, max_hops, min_strength, tokens, features):
                for uid in {_uid(graph, nodes[i]) for i in path[1:-1]}:
                    strongest[uid] = max(strongest.get(uid, 0.0), s)
        for uid, s in strongest.items():
            best.setdefault(uid, []).append(s)
    return {uid: (len(values), float(np.mean(values))) for uid, values in best.items()}


def _kind(graph: GraphRecord, kind: str) -> set[int]:
    return {i for i, node in enumerate(graph.nodes) if node.kind == kind}


def _uid(graph: GraphRecord, node: NodeRecord) -> str:
    return catalog_uid(graph.transcoder, node.layer, node.feature_index)


def store(driver, graph: GraphRecord, tags: tuple[str, ...] = ("two-hop",)) -> str:
    """Write `graph` with the ingest writer (answer = top logit) and fold it into the corpus
    aggregates, as an ingest run leaves it; returns its graph uid."""
    from db.connection import Neo4jHandle, database_name
    from ingest.aggregate import Aggregator
    from ingest.corpus import PromptRecord
    from ingest.spec import prompt_uid
    from ingest.writer import GraphWriter

    top = max((n for n in graph.nodes if n.kind == "logit"), key=lambda n: n.probability or 0)
    prompt = PromptRecord(prompt_uid(graph.prompt), graph.prompt, list(tags), top.token)
    handle = Neo4jHandle(driver, database_name())
    uid = GraphWriter(handle).write_graph(prompt, graph).graph_uid
    Aggregator(handle).fold_all()
    return uid


def feature_uid(layer: int, index: int) -> str:
    return f"{TRANSCODER}/{layer}/{index}"
