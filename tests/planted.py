"""Hand-built two-hop graphs with a planted chain, and a brute-force path reference, for tests.

Each graph reads "the capital of the state containing CITY is" and holds the chain
city token -> state feature (layer 0, city position) -> capital feature (layer 2, last position)
-> capital logit, with strong weights, amid weaker random edges among distractor features. The
state and capital features use the same catalog index in every graph of that state, like a real
transcoder's features would.
"""

from __future__ import annotations

import numpy as np

from circuitmap.records import (
    GraphRecord,
    NodeRecord,
    error_node_id,
    feature_node_id,
    logit_node_id,
    token_node_id,
)

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


def reference_paths(
    graph: GraphRecord, token: str, logit: str, min_hops: int, max_hops: int, min_strength: float
) -> list[tuple[float, list[str]]]:
    """Every token -> features -> logit path with strength >= min_strength, strongest first.

    Strength is the product of |w| / (sum of |w| into the target) along the path: the definition
    the Cypher library implements, computed here by plain enumeration.
    """
    weights = graph.edge_weight.astype(np.float64)
    into = np.zeros(len(graph.nodes))
    np.add.at(into, graph.edge_target, np.abs(weights))
    inputs: dict[int, list[tuple[int, float]]] = {}
    for s, t, w in zip(graph.edge_source, graph.edge_target, weights, strict=True):
        inputs.setdefault(int(t), []).append((int(s), abs(w) / into[t]))
    nodes = graph.nodes
    found: list[tuple[float, list[str]]] = []

    def walk(head: int, strength: float, path: list[int]) -> None:
        hops = len(path) - 1
        if hops >= max_hops:
            return
        for source, share in inputs.get(head, []):
            s = strength * share
            if s < min_strength:
                continue
            node = nodes[source]
            if node.kind == "token" and node.token == token and hops + 1 >= min_hops:
                found.append((s, [nodes[i].node_id for i in [source, *reversed(path)]]))
            elif node.kind == "feature":
                walk(source, s, [*path, source])

    for i, node in enumerate(nodes):
        if node.kind == "logit" and node.token == logit:
            walk(i, 1.0, [i])
    return sorted(found, key=lambda item: -item[0])


def store(driver, graph: GraphRecord, tags: tuple[str, ...] = ("two-hop",)) -> str:
    """Write `graph` with the ingest writer (answer = top logit); returns its graph uid."""
    from ingest.corpus import PromptRecord
    from ingest.spec import prompt_uid
    from ingest.writer import GraphWriter

    top = max((n for n in graph.nodes if n.kind == "logit"), key=lambda n: n.probability or 0)
    prompt = PromptRecord(prompt_uid(graph.prompt), graph.prompt, list(tags), top.token)
    return GraphWriter(driver).write_graph(prompt, graph).graph_uid


def feature_uid(layer: int, index: int) -> str:
    return f"{TRANSCODER}/{layer}/{index}"
