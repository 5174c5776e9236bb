"""GraphRecord -> the parameter lists the writer sends, computed once per graph with numpy.

Kept apart from the writer so the Cypher side only takes lists. Edges travel as three parallel
lists (source position, target position, weight) that the writer turns into `ATTR`
relationships; each node carries `in_abs_weight`, the sum of |weight| over its incoming edges, so
that a query gets an edge's share without reading the target's other inputs (docs/schema.md).
What a graph brings to the catalog is reduced here too, into one row of lists (its distinct
catalog features, their instances, their numbers for the corpus aggregates, its feature pairs):
the writer stores it
beside the graph and ingest.aggregate folds it into the catalog later.
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
    nodes: list[dict[str, object]] = field(default_factory=list)  # in idx order
    # The edges as parallel lists: source idx, target idx, weight.
    edge_source: list[int] = field(default_factory=list)
    edge_target: list[int] = field(default_factory=list)
    edge_weight: list[float] = field(default_factory=list)
    # What the graph brings to the catalog, stored as a (:PendingAggregate) until
    # ingest.aggregate folds it in; None for a failure or a graph without features.
    contribution: dict[str, object] | None = None

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

    `agg_pairs` caps the feature pairs this graph contributes to `AGG_ATTR`: its strongest pairs
    by |summed weight| (0: none, -1: all).
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
    in_abs_weight = node_in_abs_weight(graph)
    for i, node in enumerate(graph.nodes):
        props = {
            "idx": i,
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
            "in_abs_weight": in_abs_weight[i],
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


def node_in_abs_weight(graph: GraphRecord) -> list[float]:
    """Per node, the sum of |weight| over its incoming edges (0.0 without any)."""
    weight = np.abs(graph.edge_weight.astype(np.float64))
    return np.bincount(graph.edge_target, weight, minlength=len(graph.nodes)).tolist()


def _add_features(
    payload: GraphPayload,
    graph: GraphRecord,
    feature_of: np.ndarray,
    uids: list[str],
    agg_pairs: int,
) -> None:
    """The contribution: distinct catalog features (sorted by uid: the fold's lock order) with
    their catalog fields, their instances (node idx -> feature position), aggregates and pairs."""
    if not uids:
        return
    distinct, code = np.unique(np.array(uids), return_inverse=True)
    is_feature = feature_of >= 0
    node_code = np.full(len(graph.nodes), -1, dtype=np.int64)
    node_code[is_feature] = code[feature_of[is_feature]]
    instances = np.flatnonzero(is_feature)
    inst_code = node_code[is_feature]
    nodes = graph.nodes
    n = len(distinct)
    first = np.full(n, len(nodes), dtype=np.int64)
    np.minimum.at(first, inst_code, instances)
    firsts = [nodes[int(i)] for i in first]
    # Per graph, a feature counts once: its most influential instance (smallest cumulative share,
    # the record convention) and its largest activation.
    influence = np.array([_value(nodes[i].influence, np.inf) for i in instances])
    activation = np.array([_value(nodes[i].activation, 0.0) for i in instances])
    best_inf = np.full(n, np.inf)
    np.minimum.at(best_inf, inst_code, influence)
    best_act = np.zeros(n)
    np.maximum.at(best_act, inst_code, activation)
    best_inf[np.isinf(best_inf)] = 0.0
    reached_feature, reached_token = _reached_logits(graph, node_code)
    pair_source, pair_target, pair_sum = _pairs(graph, node_code, n, agg_pairs)
    payload.contribution = {
        "graph_uid": payload.graph_uid,
        "transcoder": graph.transcoder,
        "features": distinct.tolist(),
        "layer": [node.layer for node in firsts],
        "index": [node.feature_index for node in firsts],
        "label": [node.label for node in firsts],
        "instance_idx": instances.tolist(),
        "instance_feature": inst_code.tolist(),
        "n_instances": np.bincount(inst_code, minlength=n).tolist(),
        "influence": best_inf.tolist(),
        "activation": best_act.tolist(),
        "reached_feature": reached_feature,
        "reached_token": reached_token,
        "pair_source": pair_source,
        "pair_target": pair_target,
        "pair_sum": pair_sum,
    }


def _value(x: float | None, missing: float) -> float:
    return missing if x is None or not np.isfinite(x) else float(x)


def _reached_logits(graph: GraphRecord, node_code: np.ndarray) -> tuple[list[int], list[str]]:
    """(feature position, logit token) pairs, each once: the logits a feature's instances feed
    directly with a positive weight."""
    is_logit = np.array([node.kind == "logit" for node in graph.nodes], dtype=bool)
    src, tgt, w = graph.edge_source, graph.edge_target, graph.edge_weight
    mask = is_logit[tgt] & (node_code[src] >= 0) & (w > 0)
    features, logits = node_code[src[mask]].tolist(), tgt[mask].tolist()
    pairs = sorted({(f, graph.nodes[t].token) for f, t in zip(features, logits, strict=True)})
    return [f for f, _ in pairs], [t for _, t in pairs]


def _pairs(
    graph: GraphRecord, node_code: np.ndarray, n: int, limit: int
) -> tuple[list[int], list[int], list[float]]:
    """AGG_ATTR rows (source, target feature positions, summed weight): ordered pairs of distinct
    features joined by edges, the `limit` strongest by |summed weight|."""
    a, b = node_code[graph.edge_source], node_code[graph.edge_target]
    mask = (a >= 0) & (b >= 0)
    if not limit or not mask.any():
        return [], [], []
    key = a[mask] * n + b[mask]
    pairs, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, graph.edge_weight[mask].astype(np.float64), minlength=len(pairs))
    if 0 < limit < len(pairs):
        keep = np.sort(np.argpartition(-np.abs(sums), limit)[:limit])
        pairs, sums = pairs[keep], sums[keep]
    return (pairs // n).tolist(), (pairs % n).tolist(), sums.tolist()


@dataclass
class BatchPayload:
    """Several graphs (and failures) written in one transaction: their rows, side by side."""

    graphs: list[dict[str, object]] = field(default_factory=list)  # {prompt, graph} rows
    # Complete graphs' bodies: {uid, nodes, source, target, weight}.
    bodies: list[dict[str, object]] = field(default_factory=list)
    n_nodes: int = 0
    n_edges: int = 0
    contributions: list[dict[str, object]] = field(default_factory=list)


def batch_payload(payloads: list[GraphPayload]) -> BatchPayload:
    """Combine graph payloads (complete or failed, distinct uids) into one transaction's lists."""
    batch = BatchPayload()
    for p in payloads:
        batch.graphs.append({"prompt": p.prompt, "graph": p.graph})
        if p.graph["status"] != "complete":
            continue
        batch.bodies.append(
            {
                "uid": p.graph_uid,
                "nodes": p.nodes,
                "source": p.edge_source,
                "target": p.edge_target,
                "weight": p.edge_weight,
            }
        )
        batch.n_nodes += len(p.nodes)
        batch.n_edges += p.n_edges
        if p.contribution is not None:
            batch.contributions.append(p.contribution)
    return batch
