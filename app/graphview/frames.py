"""The DataFrame shapes the graph view works on, and a GraphRecord -> DataFrame conversion."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from circuitmap.records import GraphRecord

NODE_COLUMNS = [
    "node_id",
    "kind",
    "layer",
    "position",
    "token",
    "feature_index",
    "feature_uid",
    "activation",
    "influence",
    "probability",
    "label",
]
EDGE_COLUMNS = ["source", "target", "weight"]


def among(values: pd.Series, members: Iterable[str]) -> np.ndarray:
    """`values.isin(members)` as a numpy mask, by one hash lookup: pandas' isin on Arrow strings
    loops in Python (40,000 edge ends against 2,000 node ids: 20 ms, here 5 ms)."""
    index = pd.Index(pd.unique(pd.Series(list(members), dtype=object)))
    return index.get_indexer(values) >= 0


def empty_edges() -> pd.DataFrame:
    return pd.DataFrame({"source": [], "target": [], "weight": []}).astype(
        {"source": object, "target": object, "weight": float}
    )


def normalize_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    """Give a node frame every expected column with usable dtypes (queries may omit some)."""
    out = nodes.copy()
    for col in NODE_COLUMNS:
        if col not in out.columns:
            out[col] = None
    out = out[NODE_COLUMNS + [c for c in out.columns if c not in NODE_COLUMNS]]
    for col in ("layer", "position"):
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).astype(int)
    for col in ("activation", "influence", "probability"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["label"] = out["label"].fillna("").astype(str)
    out["token"] = out["token"].fillna("").astype(str)
    return out.reset_index(drop=True)


def normalize_edges(edges: pd.DataFrame) -> pd.DataFrame:
    if edges is None or edges.empty:
        return empty_edges()
    out = edges[EDGE_COLUMNS].copy()
    out["weight"] = pd.to_numeric(out["weight"], errors="coerce").fillna(0.0).astype(float)
    return out.reset_index(drop=True)


def record_frames(
    record: GraphRecord, feature_uid_prefix: str = ""
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and edges of a GraphRecord as the frames the view draws (tests, previews)."""
    prefix = feature_uid_prefix or record.transcoder
    rows = []
    for n in record.nodes:
        row = {c: getattr(n, c, None) for c in NODE_COLUMNS if c != "feature_uid"}
        row["feature_uid"] = (
            f"{prefix}/{n.layer}/{n.feature_index}" if n.kind == "feature" else None
        )
        rows.append(row)
    nodes = normalize_nodes(pd.DataFrame(rows, columns=NODE_COLUMNS))
    ids = nodes["node_id"].to_numpy()
    edges = pd.DataFrame(
        {
            "source": ids[record.edge_source],
            "target": ids[record.edge_target],
            "weight": record.edge_weight.astype(float),
        }
    )
    return nodes, normalize_edges(edges)
