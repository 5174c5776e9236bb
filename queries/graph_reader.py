"""Read one stored graph back: as a `GraphRecord` (exporters), and its edges (also the dashboard).

`read_edges` is the one way to read a graph's edges, so every reader gets the fast single-row form.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from circuitmap.records import GraphRecord, NodeRecord
from db.connection import Neo4jHandle
from queries.runner import run_cypher, run_query

GRAPH_INFO = """
MATCH (g:Graph {uid: $graph})
  WHERE g.status = 'complete'
MATCH (pr:Prompt {uid: g.prompt_uid})
OPTIONAL MATCH (m:Model {uid: g.model_uid})
RETURN g {.*, created_at: null} AS graph, pr.text AS prompt, m.n_layers AS n_layers
"""


def read_graph(handle: Neo4jHandle, graph_uid: str) -> GraphRecord:
    """The complete graph `graph_uid` as a GraphRecord; LookupError when there is none."""
    info = run_cypher(handle, GRAPH_INFO, {"graph": graph_uid}, row_cap=0, check=False).frame
    if info.empty:
        raise LookupError(f"no complete graph {graph_uid!r}")
    graph, prompt, n_layers = info.iloc[0][["graph", "prompt", "n_layers"]]
    nodes_df = run_query(handle, "graph_nodes", {"graph": graph_uid}, row_cap=0).frame
    edges_df = read_edges(handle, graph_uid)
    nodes = [
        NodeRecord(
            node_id=row.node_id,
            kind=row.kind,
            layer=int(row.layer),
            position=int(row.position),
            token=row.token or "",
            feature_index=_int_or_none(row.feature_index),
            activation=_float_or_none(row.activation),
            influence=_float_or_none(row.influence),
            probability=_float_or_none(row.probability),
            label=row.label or "",
        )
        for row in nodes_df.itertuples(index=False)
    ]
    index = {node.node_id: i for i, node in enumerate(nodes)}
    logit_layers = [n.layer for n in nodes if n.kind == "logit"]
    tokens = sorted((n.position, n.token) for n in nodes if n.kind == "token")
    return GraphRecord(
        prompt=prompt,
        prompt_tokens=[text for _, text in tokens],
        model=graph.get("model_uid") or "",
        transcoder=graph.get("transcoder_uid") or "",
        nodes=nodes,
        edge_source=np.array([index[s] for s in edges_df["source"]], dtype=np.int64),
        edge_target=np.array([index[t] for t in edges_df["target"]], dtype=np.int64),
        edge_weight=edges_df["weight"].to_numpy(dtype=np.float32),
        n_layers=int(n_layers) if n_layers is not None else max(logit_layers, default=0),
        scores={
            key: float(graph[prop])
            for key, prop in (
                ("replacement", "replacement_score"),
                ("completeness", "completeness_score"),
            )
            if graph.get(prop) is not None
        },
        settings=json.loads(graph.get("settings") or "{}"),
        metadata={"graph_uid": graph_uid, "tool_version": graph.get("tool_version")},
    )


def read_edges(handle: Neo4jHandle, graph_uid: str) -> pd.DataFrame:
    """Every edge of a complete graph as columns source, target (node ids) and weight.

    Uses `graph_edge_lists` (three lists in one row): the handle's cost is per record, so this is
    several times faster than one row per edge for graphs of 10^4 edges and more.
    """
    lists = run_query(handle, "graph_edge_lists", {"graph": graph_uid}, row_cap=0).frame
    if lists.empty:
        return pd.DataFrame({"source": [], "target": [], "weight": []})
    row = lists.iloc[0]
    return pd.DataFrame(
        {"source": row["sources"], "target": row["targets"], "weight": row["weights"]}
    )


def _int_or_none(value: object) -> int | None:
    return None if value is None or value != value else int(value)


def _float_or_none(value: object) -> float | None:
    return None if value is None or value != value else float(value)
