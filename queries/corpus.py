"""Corpus-wide reads: the inputs of supernode suggestion, the corpus circuit of a tag or a
supernode, the inputs of a validation run and its stored results.

Answer-path features come from the library query `answer_path_features` (run by name, so however
per-graph edges are stored this module reads none itself); which graphs a feature is active in
from the per-graph nodes' `feature_uid`; corpus edges from `AGG_ATTR`; logit effects from the
features' catalogue cards. The Cypher is in `queries/corpus/*.cypher`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from circuitmap.grouping import (
    CorpusFeatures,
    FeatureGroup,
    GroupingSettings,
    decoder_directions,
    group_features,
)
from db.connection import Neo4jHandle
from ingest.aggregate import PAIR_KEY_BASE
from ingest.validation import GroupFeatures, ValidationPrompt, ValidationSpec
from queries.runner import run_query

CYPHER_DIR = Path(__file__).with_name("corpus")


@cache
def cypher(name: str) -> str:
    return (CYPHER_DIR / f"{name}.cypher").read_text()


def read_frame(handle: Neo4jHandle, name: str, params: dict[str, object]) -> pd.DataFrame:
    records = handle.read(cypher(name), params)
    return pd.DataFrame([dict(r) for r in records])


@dataclass(frozen=True)
class PathSearch:
    """How answer paths are searched (the parameters of `answer_path_features`)."""

    min_graphs: int = 2  # a feature must lie on answer paths in at least this many graphs
    max_hops: int = 4
    min_strength: float = 0.001
    max_features: int = 5000
    timeout_s: float | None = None  # None: the runner's default (CIRCUITMAP_QUERY_TIMEOUT_S)


def tagged_graphs(
    handle: Neo4jHandle, tag: str, model: str | None = None, transcoder: str | None = None
) -> pd.DataFrame:
    """The tag's complete graphs: graph_uid, prompt_uid, prompt, answer, tags, model_uid,
    transcoder_uid, metadata (a dict)."""
    frame = read_frame(
        handle, "tagged_graphs", {"tag": tag, "model": model, "transcoder": transcoder}
    )
    columns = ["graph_uid", "prompt_uid", "prompt", "answer", "tags", "model_uid",
               "transcoder_uid", "metadata"]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["metadata"] = [json.loads(m) if m else {} for m in frame["metadata"]]
    return frame


def answer_path_features(
    handle: Neo4jHandle, tag: str, n_graphs: int, search: PathSearch, **filters: str | None
) -> pd.DataFrame:
    """Features on answer paths in at least `search.min_graphs` of the tag's `n_graphs` graphs."""
    params = {
        "tag": tag,
        "min_fraction": search.min_graphs / max(n_graphs, 1),
        "max_hops": search.max_hops,
        "min_strength": search.min_strength,
        "limit": search.max_features,
        **filters,
    }
    return run_query(
        handle,
        "answer_path_features",
        params,
        row_cap=search.max_features,
        timeout_s=search.timeout_s,
    ).frame


@dataclass
class SuggestionInputs:
    """What suggestion groups: the answer-path features of a tag and the corpus around them."""

    tag: str
    graphs: pd.DataFrame  # tagged_graphs
    features: pd.DataFrame  # answer_path_features rows, with layer and index
    corpus: CorpusFeatures

    @property
    def keys(self) -> list[tuple[int, int]]:
        return list(zip(self.features["layer"], self.features["index"], strict=True))


def suggestion_inputs(
    handle: Neo4jHandle,
    tag: str,
    search: PathSearch | None = None,
    model: str | None = None,
    transcoder: str | None = None,
) -> SuggestionInputs:
    """Answer-path features of `tag`, where each is active, and the corpus edges among them."""
    search = search or PathSearch()
    graphs = tagged_graphs(handle, tag, model, transcoder)
    if graphs.empty:
        raise LookupError(f"no complete graphs of prompts tagged {tag!r}")
    found = answer_path_features(
        handle, tag, len(graphs), search, model=model, transcoder=transcoder
    )
    uids = found["feature_uid"].tolist() if not found.empty else []
    cards = read_frame(handle, "feature_cards", {"uids": uids})
    features = found.drop(columns=["layer", "label"], errors="ignore")
    if uids:
        features = features.merge(cards[["feature_uid", "layer", "index", "label"]], how="left")
    else:
        features = pd.DataFrame(columns=["feature_uid", "layer", "index", "label", "n_graphs"])
        cards = pd.DataFrame(columns=["feature_uid", *LOGIT_EFFECT_COLUMNS])
    column = {uid: i for i, uid in enumerate(uids)}
    row = {g: i for i, g in enumerate(graphs["graph_uid"])}
    presence = np.zeros((len(graphs), len(uids)), dtype=bool)
    graph_uids = graphs["graph_uid"].tolist()
    for rec in handle.read(cypher("feature_graphs"), {"uids": uids, "graphs": graph_uids}):
        presence[[row[g] for g in rec["graphs"]], column[rec["feature_uid"]]] = True
    edge_graphs = corpus_edge_graphs(handle, uids)
    labels = [str(label or "") for label in features["label"]]
    effects = logit_effects(cards.set_index("feature_uid").reindex(uids))
    corpus = CorpusFeatures(uids, labels, presence, edge_graphs, logit_effects=effects)
    return SuggestionInputs(tag, graphs, features.reset_index(drop=True), corpus)


LOGIT_EFFECT_COLUMNS = ["top_logits", "top_logit_effects", "bottom_logits", "bottom_logit_effects"]


def logit_effects(cards: pd.DataFrame) -> list[dict[str, float]]:
    """Per card row, token -> direct logit effect from the catalogue's top and bottom effects
    (empty where the feature has none)."""
    out = []
    for row in cards.reindex(columns=LOGIT_EFFECT_COLUMNS).itertuples(index=False):
        found: dict[str, float] = {}
        for tokens, values in ((row[0], row[1]), (row[2], row[3])):
            if isinstance(tokens, list) and isinstance(values, list):
                found.update(zip(tokens, map(float, values), strict=False))
        out.append(found)
    return out


def corpus_edge_graphs(handle: Neo4jHandle, uids: list[str]) -> np.ndarray:
    """[n, n] graphs joining feature i to feature j by an edge (`AGG_ATTR` n_graphs), read as
    one list of pair keys per feature and matched to the set by catalogue number in numpy."""
    rows = handle.read(cypher("feature_edge_lists"), {"uids": uids})
    edge_graphs = np.zeros((len(uids), len(uids)), dtype=np.float32)
    numbered = [r for r in rows if r["number"] is not None]
    if not numbered:
        return edge_graphs
    column = {uid: i for i, uid in enumerate(uids)}
    numbers = np.array([r["number"] for r in numbered], dtype=np.int64)
    column_of = np.full(int(numbers.max()) + 1, -1, dtype=np.int64)
    column_of[numbers] = [column[r["feature_uid"]] for r in numbered]
    for rec in numbered:
        pairs = np.asarray(rec["pairs"], dtype=np.int64)
        target = pairs % PAIR_KEY_BASE
        inside = target < len(column_of)
        cols = column_of[target[inside]]
        kept = cols >= 0
        counts = np.asarray(rec["n_graphs"], dtype=np.float32)[inside][kept]
        edge_graphs[column[rec["feature_uid"]], cols[kept]] = counts
    return edge_graphs


@dataclass
class Suggestion:
    """A suggested supernode: its group and its members' uids and labels."""

    group: FeatureGroup
    uids: list[str]
    labels: list[str]
    keys: list[tuple[int, int]]  # (layer, index) of each member

    @property
    def label(self) -> str:
        return self.group.label


def suggest_supernodes(
    inputs: SuggestionInputs,
    settings: GroupingSettings | None = None,
    transcoder: object | None = None,
) -> list[Suggestion]:
    """Group the answer-path features of `inputs`; with a `transcoder` (a
    `circuitmap.transcoders.Transcoder`) decoder directions count too."""
    corpus = inputs.corpus
    if transcoder is not None and corpus.uids:
        keys = [(int(layer), int(index)) for layer, index in inputs.keys]
        corpus = replace(corpus, directions=decoder_directions(transcoder, keys))
    groups = group_features(corpus, settings)
    keys = inputs.keys
    return [
        Suggestion(
            g,
            [corpus.uids[i] for i in g.members],
            [corpus.labels[i] for i in g.members],
            [(int(keys[i][0]), int(keys[i][1])) for i in g.members],
        )
        for g in groups
    ]


def recorded_transcoder(graphs: pd.DataFrame) -> str | None:
    """The transcoder path the graphs were computed with (their metadata), if all agree."""
    paths = {m.get("transcoder_path") for m in graphs["metadata"]}
    return paths.pop() if len(paths) == 1 else None


def supernode_members(handle: Neo4jHandle, names: list[str] | None = None) -> pd.DataFrame:
    """supernode, feature_uid, layer, index of the named supernodes' members (all if None)."""
    frame = read_frame(handle, "supernode_members", {"names": names})
    if names:
        missing = sorted(set(names) - set(frame.get("supernode", pd.Series(dtype=str))))
        if missing:
            raise LookupError(f"no supernode named {missing[0]!r} (or it has no members)")
    if frame.empty:
        return pd.DataFrame(columns=["supernode", "feature_uid", "layer", "index"])
    return frame


def feature_graphs(handle: Neo4jHandle, uids: list[str], graphs: list[str]) -> dict[str, set]:
    """feature uid -> the graphs among `graphs` in which it has an instance."""
    records = handle.read(cypher("feature_graphs"), {"uids": uids, "graphs": graphs})
    return {r["feature_uid"]: set(r["graphs"]) for r in records}


def feature_instances(
    handle: Neo4jHandle, uids: list[str], graphs: list[str], limit: int = 500
) -> pd.DataFrame:
    """Instances of the features in those graphs (graph, prompt, node, activation, influence)."""
    params = {"uids": uids, "graphs": graphs, "limit": limit}
    return read_frame(handle, "feature_instances", params)


# ---- the corpus circuit -------------------------------------------------------------------------


@dataclass
class CorpusCircuit:
    """The aggregate graph of a tag: `nodes` (id, kind, label, support, members) and `edges`
    (source, target, n_graphs, sum_weight, mean_weight); support counts graphs."""

    tag: str
    n_graphs: int
    nodes: pd.DataFrame
    edges: pd.DataFrame
    members: dict[str, list[str]]  # node id -> feature uids (features and supernodes)


NODE_COLUMNS = ["node", "kind", "label", "layer", "support", "n_members"]
EDGE_COLUMNS = ["source", "target", "kind", "n_graphs", "sum_weight", "mean_weight"]


def corpus_circuit(
    handle: Neo4jHandle,
    tag: str,
    supernodes: list[str] | None = None,
    search: PathSearch | None = None,
    only: str | None = None,
) -> CorpusCircuit:
    """The tag's answer-path features with supernode members merged (all supernodes, or the
    named ones), the answers they reach (logit classes), the tokens they act at (token classes),
    and the corpus edges among them. `only` keeps the part of the circuit joined to one
    supernode (its node and its direct neighbours)."""
    search = search or PathSearch()
    graphs = tagged_graphs(handle, tag)
    if graphs.empty:
        raise LookupError(f"no complete graphs of prompts tagged {tag!r}")
    found = answer_path_features(handle, tag, len(graphs), search)
    members = supernode_members(handle, supernodes)
    group_of = {}
    for name, uid in zip(members["supernode"], members["feature_uid"], strict=True):
        group_of.setdefault(uid, f"supernode:{name}")
    path_uids = found["feature_uid"].tolist() if not found.empty else []
    uids = sorted(set(path_uids) | set(group_of))
    if not uids:
        raise LookupError(
            f"no feature lies on answer paths in {search.min_graphs} graphs of {tag!r}"
        )
    node_of = {uid: group_of.get(uid, f"feature:{uid}") for uid in uids}
    graph_uids = graphs["graph_uid"].tolist()
    active = feature_graphs(handle, uids, graph_uids)
    cards = read_frame(handle, "feature_cards", {"uids": uids}).set_index("feature_uid")
    grouped: dict[str, list[str]] = {}
    for uid in uids:
        if uid in active:  # members never active in the tag's graphs are not in its circuit
            grouped.setdefault(node_of[uid], []).append(uid)
    rows = []
    for node, group in grouped.items():
        support = len(set().union(*(active[u] for u in group)))
        is_supernode = node.startswith("supernode:")
        label = node.split(":", 1)[1] if is_supernode else str(cards.at[group[0], "label"] or "")
        layer = int(min(cards.loc[group, "layer"]))
        rows.append((node, "supernode" if is_supernode else "feature", label, layer, support,
                     len(group)))  # fmt: skip
    answer_counts = graphs["answer"].value_counts()
    for answer, count in answer_counts.items():
        rows.append((f"logit:{answer}", "logit", str(answer), 10**6, int(count), 0))
    edges = _circuit_edges(handle, node_of, grouped, cards, graph_uids, set(answer_counts.index))
    token_support = edges[edges["kind"] == "token"].groupby("source")["n_graphs"].max()
    for token, support in token_support.items():
        rows.append((token, "token", token.split(":", 1)[1], -1, int(support), 0))
    nodes = pd.DataFrame(rows, columns=NODE_COLUMNS)
    if only is not None:
        nodes, edges = _neighbourhood(nodes, edges, f"supernode:{only}")
    nodes = nodes.sort_values(["layer", "support"], ascending=[True, False]).reset_index(drop=True)
    kept = {n: grouped.get(n, []) for n in nodes["node"]}
    return CorpusCircuit(tag, len(graphs), nodes, edges.reset_index(drop=True), kept)


def _circuit_edges(
    handle: Neo4jHandle,
    node_of: dict[str, str],
    grouped: dict[str, list[str]],
    cards: pd.DataFrame,
    graph_uids: list[str],
    answers: set[str],
) -> pd.DataFrame:
    """Feature edges from AGG_ATTR (summed between groups, inside a group dropped), edges to the
    answers from each feature's reached logits, and token -> feature from where they act."""
    uids = [u for group in grouped.values() for u in group]
    rows = []
    for rec in handle.read(cypher("feature_pairs"), {"uids": uids}):
        source, target = node_of[rec["source"]], node_of[rec["target"]]
        if source != target:
            rows.append((source, target, "feature", rec["n_graphs"], rec["sum_weight"]))
    for uid in uids:
        logits = cards.at[uid, "reached_logits"] or []
        counts = cards.at[uid, "reached_logit_counts"] or []
        for token, count in zip(logits, counts, strict=False):
            if token in answers:
                rows.append((node_of[uid], f"logit:{token}", "logit", count, None))
    params = {"uids": uids, "graphs": graph_uids}
    for rec in handle.read(cypher("feature_tokens"), params):
        rows.append((f"token:{rec['token']}", node_of[rec["feature_uid"]], "token",
                     rec["n_graphs"], None))  # fmt: skip
    frame = pd.DataFrame(rows, columns=EDGE_COLUMNS[:5])
    if frame.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    # Between groups the graphs of member pairs are summed: an upper bound on the graphs joining
    # the two groups, which is what the width shows (at most the smaller group's support).
    frame = frame.groupby(["source", "target", "kind"], as_index=False, dropna=False).agg(
        n_graphs=("n_graphs", "sum"), sum_weight=("sum_weight", lambda w: w.sum(min_count=1))
    )
    frame["mean_weight"] = frame["sum_weight"] / frame["n_graphs"]
    return frame.sort_values("n_graphs", ascending=False)[EDGE_COLUMNS]


def _neighbourhood(
    nodes: pd.DataFrame, edges: pd.DataFrame, center: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if center not in set(nodes["node"]):
        raise LookupError(f"{center.split(':', 1)[1]!r} has no members in the tag's graphs")
    near = edges[(edges["source"] == center) | (edges["target"] == center)]
    keep = {center} | set(near["source"]) | set(near["target"])
    return nodes[nodes["node"].isin(keep)], near


# ---- validation runs ----------------------------------------------------------------------------


def validation_runs(handle: Neo4jHandle, supernode: str | None = None) -> pd.DataFrame:
    """Stored validation runs with n_prompts, n_present and n_success."""
    return read_frame(handle, "validation_runs", {"supernode": supernode})


def validation_results(handle: Neo4jHandle, uid: str) -> pd.DataFrame:
    """Per-prompt results of one validation run."""
    return read_frame(handle, "validation_results", {"uid": uid})


@dataclass
class ValidationInputs:
    spec: ValidationSpec
    prompts: list[ValidationPrompt]
    model_path: str
    tc_path: str


def group_features_of(handle: Neo4jHandle, name: str) -> GroupFeatures:
    members = supernode_members(handle, [name])
    keys = tuple(zip(members["layer"].astype(int), members["index"].astype(int), strict=True))
    return GroupFeatures(name, tuple(members["feature_uid"]), keys)


def validation_inputs(
    handle: Neo4jHandle,
    supernode: str,
    tag: str,
    scale: float | None = None,
    other: str | None = None,
    max_donors: int = 8,
    *,
    strength: float = 1.0,
    remove_scale: float = 0.0,
) -> ValidationInputs:
    """The spec and prompts of a validation run: every complete graph of the tag (one model and
    transcoder), and for a swap the donors, the tag's prompts where most of `other`'s features
    are active (`strength` and `remove_scale`: see `ValidationSpec`)."""
    graphs = tagged_graphs(handle, tag)
    if graphs.empty:
        raise LookupError(f"no complete graphs of prompts tagged {tag!r}")
    pairs = set(zip(graphs["model_uid"], graphs["transcoder_uid"], strict=True))
    if len(pairs) > 1:
        raise ValueError(
            f"the graphs of tag {tag!r} come from {len(pairs)} model/transcoder pairs: "
            "validation runs one model"
        )
    model_uid, transcoder_uid = pairs.pop()
    prompts = [
        ValidationPrompt(g, p, a, tuple(t))
        for g, p, a, t in zip(
            graphs["graph_uid"], graphs["prompt"], graphs["answer"], graphs["tags"], strict=True
        )
    ]
    group = group_features_of(handle, supernode)
    swap, donors = None, ()
    if other is not None:
        swap = group_features_of(handle, other)
        active = feature_graphs(handle, list(swap.uids), graphs["graph_uid"].tolist())
        counts = Counter(g for found in active.values() for g in found)
        by_graph = {p.graph_uid: p for p in prompts}
        ranked = sorted(counts, key=lambda g: (-counts[g], g))[:max_donors]
        donors = tuple(by_graph[g] for g in ranked)
    spec = ValidationSpec(
        group, tag, model_uid, transcoder_uid, scale, swap, donors, strength, remove_scale
    )
    metadata = graphs["metadata"].iloc[0]
    model_path = metadata.get("model_path") or model_uid
    tc_path = metadata.get("transcoder_path") or transcoder_uid
    return ValidationInputs(spec, prompts, model_path, tc_path)
