"""GraphRecord -> the parameter lists the writer sends, computed once per graph with numpy.

Kept apart from the writer so the Cypher side only indexes into lists: per-graph nodes by position,
catalog features by position, edges as parallel int/float lists. Corpus aggregates are reduced here
(one row per distinct catalog feature and per feature pair), so a graph adds to them exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from circuitmap import __version__
from circuitmap.records import GraphRecord
from ingest.corpus import PromptRecord
from ingest.spec import GraphSpec, canonical_json

KIND_LABELS = {
    "token": "TokenNode",
    "feature": "FeatureNode",
    "error": "ErrorNode",
    "logit": "LogitNode",
}


def feature_uid(transcoder: str, layer: int, index: int) -> str:
    return f"{transcoder}/{layer}/{index}"


@dataclass
class GraphPayload:
    """Everything one graph transaction sends; `graph_uid` keys it."""

    graph_uid: str
    prompt: dict[str, object]
    graph: dict[str, object]
    nodes: list[dict[str, object]] = field(default_factory=list)
    edge_source: list[int] = field(default_factory=list)
    edge_target: list[int] = field(default_factory=list)
    edge_weight: list[float] = field(default_factory=list)
    features: list[dict[str, object]] = field(default_factory=list)  # sorted by uid
    instance_node: list[int] = field(default_factory=list)  # node position -> feature position
    instance_feature: list[int] = field(default_factory=list)
    pair_source: list[int] = field(default_factory=list)  # AGG_ATTR rows, feature positions
    pair_target: list[int] = field(default_factory=list)
    pair_sum: list[float] = field(default_factory=list)
    pair_max_abs: list[float] = field(default_factory=list)

    @property
    def n_edges(self) -> int:
        return len(self.edge_weight)


def prompt_row(prompt: PromptRecord) -> dict[str, object]:
    return {
        "uid": prompt.uid,
        "text": prompt.text,
        "tags": list(prompt.tags),
        "answer": prompt.answer,
        "metadata": canonical_json(prompt.metadata),
        "corpus": prompt.corpus,
    }


def graph_row(
    prompt: PromptRecord, spec: GraphSpec, source: str, status: str, error: str | None = None
) -> dict[str, object]:
    return {
        "uid": spec.graph_uid(prompt.uid),
        "prompt_uid": prompt.uid,
        "model_uid": spec.model,
        "transcoder_uid": spec.transcoder,
        "settings": spec.settings_json,
        "settings_hash": spec.hash,
        "status": status,
        "error": error,
        "tool_version": __version__,
        "source": source,
    }


def failure_payload(
    prompt: PromptRecord, spec: GraphSpec, error: str, source: str = "computed"
) -> GraphPayload:
    row = graph_row(prompt, spec, source, "failed", error)
    row.update(n_nodes=0, n_edges=0)
    return GraphPayload(str(row["uid"]), prompt_row(prompt), row)


def graph_payload(
    prompt: PromptRecord, graph: GraphRecord, source: str = "computed", agg_pairs: int = 2000
) -> GraphPayload:
    """Validate `graph` and turn it into parameter lists (ValueError names a bad graph).

    `agg_pairs` caps the feature pairs this graph adds to `AGG_ATTR`: its strongest pairs by
    |summed weight| (0: none, -1: all).
    """
    graph.validate()
    spec = GraphSpec.of(graph)
    row = graph_row(prompt, spec, source, "complete")
    row.update(
        replacement_score=graph.scores.get("replacement"),
        completeness_score=graph.scores.get("completeness"),
        n_nodes=len(graph.nodes),
        n_edges=graph.n_edges,
        n_layers=graph.n_layers,
        prompt_tokens=list(graph.prompt_tokens),
        metadata=json.dumps(graph.metadata, sort_keys=True, default=str),
    )
    payload = GraphPayload(str(row["uid"]), prompt_row(prompt), row)
    feature_of = np.full(len(graph.nodes), -1, dtype=np.int64)
    uids: list[str] = []
    for i, node in enumerate(graph.nodes):
        props = {
            "node_id": node.node_id,
            "kind": node.kind,
            "layer": node.layer,
            "position": node.position,
            "token": node.token,
            "feature_index": node.feature_index,
            "activation": node.activation,
            "influence": node.influence,
            "probability": node.probability,
            "label": node.label,
        }
        if node.kind == "feature":
            props["feature_uid"] = feature_uid(graph.transcoder, node.layer, node.feature_index)
            feature_of[i] = len(uids)
            uids.append(str(props["feature_uid"]))
        payload.nodes.append({k: v for k, v in props.items() if v is not None})
    payload.edge_source = graph.edge_source.tolist()
    payload.edge_target = graph.edge_target.tolist()
    payload.edge_weight = graph.edge_weight.astype(np.float64).tolist()
    _add_features(payload, graph, feature_of, uids, agg_pairs)
    return payload


def _add_features(
    payload: GraphPayload,
    graph: GraphRecord,
    feature_of: np.ndarray,
    uids: list[str],
    agg_pairs: int,
) -> None:
    """Distinct catalog features (sorted, for a stable lock order), instances and pair sums."""
    if not uids:
        return
    distinct, code = np.unique(np.array(uids), return_inverse=True)
    is_feature = feature_of >= 0
    node_code = np.full(len(graph.nodes), -1, dtype=np.int64)
    node_code[is_feature] = code[feature_of[is_feature]]
    payload.instance_node = np.flatnonzero(is_feature).tolist()
    payload.instance_feature = node_code[is_feature].tolist()
    nodes = graph.nodes
    inst_code = node_code[is_feature]
    n = len(distinct)
    n_inst = np.bincount(inst_code, minlength=n)
    # Per graph, a feature counts once: its most influential instance (smallest cumulative share,
    # the record convention) and its largest activation.
    influence = np.array([_value(nodes[i].influence, np.inf) for i in payload.instance_node])
    activation = np.array([_value(nodes[i].activation, 0.0) for i in payload.instance_node])
    best_inf = np.full(n, np.inf)
    np.minimum.at(best_inf, inst_code, influence)
    best_act = np.zeros(n)
    np.maximum.at(best_act, inst_code, activation)
    best_inf[np.isinf(best_inf)] = 0.0
    reached = _reached_logits(graph, node_code, len(distinct))
    for k, uid in enumerate(distinct.tolist()):
        first = nodes[payload.instance_node[int(np.argmax(inst_code == k))]]
        payload.features.append(
            {
                "uid": uid,
                "transcoder": payload.graph["transcoder_uid"],
                "layer": first.layer,
                "index": first.feature_index,
                "label": first.label,
                "n_instances": int(n_inst[k]),
                "influence": float(best_inf[k]),
                "activation": float(best_act[k]),
                "reached": reached[k],
            }
        )
    if agg_pairs:
        _add_pairs(payload, graph, node_code, len(distinct), agg_pairs)


def _value(x: float | None, missing: float) -> float:
    return missing if x is None or not np.isfinite(x) else float(x)


def _reached_logits(graph: GraphRecord, node_code: np.ndarray, n: int) -> list[list[str]]:
    """Per distinct feature, the logit tokens it feeds directly with a positive weight."""
    reached: list[set[str]] = [set() for _ in range(n)]
    kinds = np.array([node.kind == "logit" for node in graph.nodes])
    src, tgt, w = graph.edge_source, graph.edge_target, graph.edge_weight
    mask = kinds[tgt] & (node_code[src] >= 0) & (w > 0)
    for s, t in zip(src[mask].tolist(), tgt[mask].tolist(), strict=True):
        reached[int(node_code[s])].add(graph.nodes[t].token)
    return [sorted(r) for r in reached]


def _add_pairs(
    payload: GraphPayload, graph: GraphRecord, node_code: np.ndarray, n: int, limit: int
) -> None:
    """AGG_ATTR rows: ordered pairs of distinct features joined by edges, strongest first."""
    a, b = node_code[graph.edge_source], node_code[graph.edge_target]
    mask = (a >= 0) & (b >= 0)
    if not mask.any():
        return
    key = a[mask] * n + b[mask]
    w = graph.edge_weight[mask].astype(np.float64)
    pairs, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, w, minlength=len(pairs))
    max_abs = np.zeros(len(pairs))
    np.maximum.at(max_abs, inv, np.abs(w))
    if 0 < limit < len(pairs):
        keep = np.sort(np.argpartition(-np.abs(sums), limit)[:limit])
        pairs, sums, max_abs = pairs[keep], sums[keep], max_abs[keep]
    payload.pair_source = (pairs // n).tolist()
    payload.pair_target = (pairs % n).tolist()
    payload.pair_sum = sums.tolist()
    payload.pair_max_abs = max_abs.tolist()


@dataclass
class BatchPayload:
    """Several graphs (and failures) written in one transaction: the per-graph lists concatenated.

    Node positions are offset into one node list; catalog features are merged by uid (sorted, the
    lock order) with `n_graphs` counting the batch's graphs that hold each, and feature pairs are
    merged the same way, so the aggregates add up exactly as if the graphs were written one by one.
    """

    graphs: list[dict[str, object]] = field(default_factory=list)  # {prompt, graph} rows
    node_groups: list[dict[str, object]] = field(default_factory=list)  # {uid, nodes}, complete
    n_nodes: int = 0
    edge_source: list[int] = field(default_factory=list)
    edge_target: list[int] = field(default_factory=list)
    edge_weight: list[float] = field(default_factory=list)
    features: list[dict[str, object]] = field(default_factory=list)
    instance_node: list[int] = field(default_factory=list)
    instance_feature: list[int] = field(default_factory=list)
    pair_source: list[int] = field(default_factory=list)
    pair_target: list[int] = field(default_factory=list)
    pair_sum: list[float] = field(default_factory=list)
    pair_max_abs: list[float] = field(default_factory=list)
    pair_graphs: list[int] = field(default_factory=list)

    @property
    def n_edges(self) -> int:
        return len(self.edge_weight)


def batch_payload(payloads: list[GraphPayload]) -> BatchPayload:
    """Combine graph payloads (complete or failed, distinct uids) into one transaction's lists."""
    batch = BatchPayload()
    features: dict[str, dict[str, object]] = {}
    for p in payloads:
        batch.graphs.append({"prompt": p.prompt, "graph": p.graph})
        if p.graph["status"] == "complete":
            batch.node_groups.append({"uid": p.graph_uid, "nodes": p.nodes})
        for f in p.features:
            merged = features.get(str(f["uid"]))
            if merged is None:
                features[str(f["uid"])] = {**f, "n_graphs": 1, "reached": list(f["reached"])}
                continue
            merged["n_graphs"] += 1
            for key in ("n_instances", "influence", "activation"):
                merged[key] += f[key]
            merged["reached"] += f["reached"]  # a token once per graph: counted per graph
    batch.features = [features[uid] for uid in sorted(features)]
    position = {uid: k for k, uid in enumerate(sorted(features))}
    sources, targets, weights, inst_nodes, inst_features = [], [], [], [], []
    pair_keys, pair_sums, pair_max = [], [], []
    n_features = max(len(position), 1)
    for p in payloads:
        offset = batch.n_nodes
        batch.n_nodes += len(p.nodes)
        sources.append(np.asarray(p.edge_source, dtype=np.int64) + offset)
        targets.append(np.asarray(p.edge_target, dtype=np.int64) + offset)
        weights.append(np.asarray(p.edge_weight, dtype=np.float64))
        to_batch = np.array([position[str(f["uid"])] for f in p.features], dtype=np.int64)
        inst_nodes.append(np.asarray(p.instance_node, dtype=np.int64) + offset)
        inst_features.append(to_batch[np.asarray(p.instance_feature, dtype=np.int64)])
        a = to_batch[np.asarray(p.pair_source, dtype=np.int64)]
        b = to_batch[np.asarray(p.pair_target, dtype=np.int64)]
        pair_keys.append(a * n_features + b)
        pair_sums.append(np.asarray(p.pair_sum, dtype=np.float64))
        pair_max.append(np.asarray(p.pair_max_abs, dtype=np.float64))
    if not payloads:
        return batch
    batch.edge_source = np.concatenate(sources).tolist()
    batch.edge_target = np.concatenate(targets).tolist()
    batch.edge_weight = np.concatenate(weights).tolist()
    batch.instance_node = np.concatenate(inst_nodes).tolist()
    batch.instance_feature = np.concatenate(inst_features).tolist()
    keys = np.concatenate(pair_keys)
    pairs, inverse = np.unique(keys, return_inverse=True)
    max_abs = np.zeros(len(pairs))
    np.maximum.at(max_abs, inverse, np.concatenate(pair_max))
    batch.pair_source = (pairs // n_features).tolist()
    batch.pair_target = (pairs % n_features).tolist()
    batch.pair_sum = np.bincount(inverse, np.concatenate(pair_sums), len(pairs)).tolist()
    batch.pair_max_abs = max_abs.tolist()
    batch.pair_graphs = np.bincount(inverse, minlength=len(pairs)).tolist()
    return batch
