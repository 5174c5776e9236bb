"""Neuronpedia / circuit-tracer graph JSON: export a `GraphRecord`, import such files.

File layout (as circuit-tracer 0.5.0's `create_graph_files` writes it):
  metadata  {slug, scan, transcoder_list, prompt_tokens, prompt, node_threshold, schema_version}
  qParams   {pinnedIds, supernodes ([[name, node_id, ...], ...]), linkType, clickedId, sg_pos}
  nodes     [{node_id, feature, layer, ctx_idx, feature_type, token_prob, is_target_logit,
              run_idx, reverse_ctx_idx, jsNodeId, clerp, influence, activation}]
  links     [{source, target, weight}]
Node kinds by `feature_type`: "cross layer transcoder" (feature), "mlp reconstruction error",
"embedding" (token), "logit". `layer` is a string: the layer, "E" for tokens, n_layers + 1 for
logits. `feature` is cantor(layer, index) for features, -1 for errors, the position for tokens
and the token id for logits. The frontend reads a logit's token and probability from its clerp
`Output "<token>" (p=<prob>)`.

Ids: our export writes the record's ids, which never collide (errors "{layer}_-1_{pos}").
Import accepts both error conventions ("{layer}_-1_{pos}" and circuit-tracer 0.5.0's
"0_{layer}_{pos}", which collides with feature ids), reading kinds from `feature_type` and layers
and positions from the node fields, and maps every id (qParams included) to the record
convention.
What the schema has no field for (model, scores, settings, our metadata, logit token texts) goes
into `metadata.circuitmap`, so record -> JSON -> record is lossless.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from circuitmap.records import (
    GraphRecord,
    NodeRecord,
    error_node_id,
    feature_node_id,
    logit_node_id,
    token_node_id,
)

FEATURE_TYPES = {
    "feature": "cross layer transcoder",
    "error": "mlp reconstruction error",
    "token": "embedding",
    "logit": "logit",
}
QPARAM_DEFAULTS = {
    "pinnedIds": [],
    "supernodes": [],
    "linkType": "both",
    "clickedId": "",
    "sg_pos": "",
}
_CLERP_TOKEN = re.compile(r'^Output "(.*)" \(p=[^)]*\)$', re.S)


def _cantor(x: int, y: int) -> int:
    return (x + y) * (x + y + 1) // 2 + y


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "graph"


def _node_json(node: NodeRecord, n_layers: int, first_logit: str | None) -> dict:
    kind = node.kind
    if kind == "feature":
        layer, feature = str(node.layer), _cantor(node.layer, int(node.feature_index))
    elif kind == "error":
        layer, feature = str(node.layer), -1
    elif kind == "token":
        layer, feature = "E", node.position
    else:
        layer, feature = str(n_layers + 1), int(node.feature_index)
    return {
        "node_id": node.node_id,
        "feature": feature,
        "layer": layer,
        "ctx_idx": node.position,
        "feature_type": FEATURE_TYPES[kind],
        "token_prob": node.probability if node.probability is not None else 0.0,
        "is_target_logit": node.node_id == first_logit,
        "run_idx": 0,
        "reverse_ctx_idx": 0,
        "jsNodeId": node.node_id,
        "clerp": node.label,
        "influence": node.influence,
        "activation": node.activation,
    }


def graph_to_json(record: GraphRecord, slug: str | None = None) -> dict:
    """The graph JSON document for a record. qParams come from `record.metadata["qParams"]`."""
    record.validate()
    meta = dict(record.metadata)
    q_params = {**QPARAM_DEFAULTS, **meta.pop("qParams", {})}
    file_meta = meta.get("file_metadata", {})  # an imported file's own metadata, kept as is
    logits = [n for n in record.nodes if n.kind == "logit"]
    first_logit = max(logits, key=lambda n: n.probability or 0.0).node_id if logits else None
    ids = [n.node_id for n in record.nodes]
    links = [
        {"source": ids[s], "target": ids[t], "weight": float(w)}
        for s, t, w in zip(
            record.edge_source.tolist(), record.edge_target.tolist(), record.edge_weight.tolist(),
            strict=True,
        )
    ]  # fmt: skip
    metadata = {
        **file_meta,
        "slug": slug or file_meta.get("slug") or _slug(record.prompt),
        "scan": file_meta.get("scan", record.transcoder),
        "transcoder_list": file_meta.get("transcoder_list", []),
        "prompt_tokens": record.prompt_tokens,
        "prompt": record.prompt,
        "node_threshold": record.settings.get("node_threshold"),
        "schema_version": file_meta.get("schema_version", 1),
        "circuitmap": {
            "model": record.model,
            "transcoder": record.transcoder,
            "n_layers": record.n_layers,
            "scores": record.scores,
            "settings": record.settings,
            "metadata": meta,
            "tokens": {n.node_id: n.token for n in logits},
        },
    }
    return {
        "metadata": metadata,
        "qParams": q_params,
        "nodes": [_node_json(n, record.n_layers, first_logit) for n in record.nodes],
        "links": links,
    }


def write_graph_json(record: GraphRecord, path: str | Path, slug: str | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(graph_to_json(record, slug)), encoding="utf-8")
    return path


def read_graph_json(path: str | Path) -> GraphRecord:
    """Import a graph JSON file (ours, circuit-tracer's or Neuronpedia's)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read graph JSON {path}: {err}") from None
    return graph_from_json(data, source=str(path))


def _int(value, what: str, node_id: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"node {node_id!r} has a non-integer {what}: {value!r}") from None


def _kind(feature_type: str, node_id: str) -> str:
    if feature_type == "embedding":
        return "token"
    if feature_type == "logit":
        return "logit"
    if "error" in feature_type:
        return "error"
    if "transcoder" in feature_type or feature_type == "unexplored node":
        return "feature"
    raise ValueError(f"node {node_id!r} has unsupported feature_type {feature_type!r}")


def _n_layers(raw_nodes: list[dict], kinds: list[str]) -> int:
    """n_layers of a foreign file: logits sit at layer n_layers + 1, else the deepest layer."""
    layers = {k: [] for k in ("logit", "feature", "error", "token")}
    for raw, kind in zip(raw_nodes, kinds, strict=True):
        if kind != "token":
            layers[kind].append(_int(raw.get("layer"), "layer", raw.get("node_id")))
    if layers["logit"]:
        return max(layers["logit"]) - 1
    return max(layers["feature"] + layers["error"], default=-1) + 1


def _node(raw: dict, kind: str, n_layers: int, prompt_tokens: list, logit_texts: dict):
    old = str(raw.get("node_id"))
    pos = _int(raw.get("ctx_idx"), "ctx_idx", old)
    token = prompt_tokens[pos] if 0 <= pos < len(prompt_tokens) else ""
    parts = old.split("_")
    common = {
        "label": raw.get("clerp") or "",
        "influence": raw.get("influence"),
        "activation": raw.get("activation"),
    }
    if kind == "feature":
        layer = _int(raw.get("layer"), "layer", old)
        index = _int(parts[1] if len(parts) == 3 else None, "feature index", old)
        node_id = feature_node_id(layer, index, pos)
        return NodeRecord(node_id, kind, layer, pos, token, feature_index=index, **common)
    if kind == "error":
        layer = _int(raw.get("layer"), "layer", old)
        return NodeRecord(error_node_id(layer, pos), kind, layer, pos, token, **common)
    if kind == "token":
        tok = _int(parts[1] if len(parts) == 3 else None, "token id", old)
        return NodeRecord(
            token_node_id(tok, pos), kind, -1, pos, token, feature_index=tok, **common
        )
    tok = _int(raw.get("feature"), "token id", old)
    match = _CLERP_TOKEN.match(common["label"])
    text = logit_texts.get(old, match.group(1) if match else "")
    node_id = logit_node_id(n_layers, tok, pos)
    probability = raw.get("token_prob")
    return NodeRecord(
        node_id, kind, n_layers, pos, text, feature_index=tok, probability=probability, **common
    )


def graph_from_json(data: dict, source: str | None = None) -> GraphRecord:
    """A `GraphRecord` from a parsed graph JSON document."""
    try:
        meta, raw_nodes, raw_links = data["metadata"], data["nodes"], data["links"]
        kinds = [_kind(str(n.get("feature_type", "")), n.get("node_id")) for n in raw_nodes]
    except (KeyError, TypeError, AttributeError):
        raise ValueError("graph JSON needs 'metadata', 'nodes' and 'links' objects") from None
    ours = meta.get("circuitmap", {})
    prompt_tokens = list(meta.get("prompt_tokens", []))
    n_layers = int(ours["n_layers"]) if "n_layers" in ours else _n_layers(raw_nodes, kinds)
    texts = ours.get("tokens", {})

    nodes: list[NodeRecord] = []
    id_map: dict[str, str] = {}
    ambiguous: list[str] = []
    for raw, kind in zip(raw_nodes, kinds, strict=True):
        old = str(raw.get("node_id"))
        nodes.append(_node(raw, kind, n_layers, prompt_tokens, texts))
        if old not in id_map:
            id_map[old] = nodes[-1].node_id
        elif nodes[-1].node_id != id_map[old]:
            # circuit-tracer 0.5.0's error id "0_{layer}_{pos}" equals feature {layer} of layer
            # 0 at that position: links naming it cannot be told apart; they go to the first.
            ambiguous.append(old)

    index = {node.node_id: i for i, node in enumerate(nodes)}
    edges, dropped = [], 0
    for link in raw_links:
        s, t = id_map.get(str(link["source"])), id_map.get(str(link["target"]))
        if s is None or t is None:
            dropped += 1  # the frontend drops links to absent nodes too
            continue
        edges.append((index[s], index[t], float(link["weight"])))
    sources, targets, weights = zip(*edges, strict=True) if edges else ((), (), ())

    if ours:
        metadata = dict(ours.get("metadata", {}))
    else:
        file_meta = {k: v for k, v in meta.items() if k not in ("prompt", "prompt_tokens")}
        metadata = {"file_metadata": file_meta, "source_file": source}
    if dropped:
        metadata["dropped_links"] = dropped
    if ambiguous:
        metadata["ambiguous_node_ids"] = ambiguous
    q = {**QPARAM_DEFAULTS, **data.get("qParams", {})}
    if q != QPARAM_DEFAULTS:
        metadata["qParams"] = {
            **q,
            "pinnedIds": [id_map.get(i, i) for i in q["pinnedIds"]],
            "supernodes": [[g[0], *(id_map.get(i, i) for i in g[1:])] for g in q["supernodes"]],
            "clickedId": id_map.get(q["clickedId"], q["clickedId"]),
        }
    settings = ours.get("settings") or {"node_threshold": meta.get("node_threshold")}
    record = GraphRecord(
        prompt=str(meta.get("prompt", "")),
        prompt_tokens=prompt_tokens,
        model=str(ours.get("model", meta.get("scan", ""))),
        transcoder=str(ours.get("transcoder", meta.get("scan", ""))),
        nodes=nodes,
        edge_source=np.asarray(sources, dtype=np.int64),
        edge_target=np.asarray(targets, dtype=np.int64),
        edge_weight=np.asarray(weights, dtype=np.float32),
        n_layers=n_layers,
        scores=dict(ours.get("scores", {})),
        settings=dict(settings),
        metadata=metadata,
    )
    record.validate()
    return record
