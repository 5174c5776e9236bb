"""Query results made readable: graph values (nodes, relationships, paths) shown by their labels
and properties instead of the driver's Python reprs (`<Node element_id=...>`)."""

from __future__ import annotations

import json

import pandas as pd
from neo4j.graph import Node, Path, Relationship

IDENTITY = ("uid", "name", "node_id", "graph_uid", "kind", "label")
MAX_CHARS = 300  # a long property (a JSON context list) is cut, the table stays readable


def graph_value_text(value: object) -> object:
    """A node as `(:Label {props})`, a relationship as `[:TYPE {props}]`, a path as its nodes and
    relationships in order; lists element by element; anything else unchanged."""
    if isinstance(value, Node):
        return f"(:{':'.join(sorted(value.labels))} {_props(dict(value))})"
    if isinstance(value, Relationship):
        return f"[:{value.type} {_props(dict(value))}]"
    if isinstance(value, Path):
        parts = [graph_value_text(value.start_node)]
        for rel in value.relationships:
            parts += [f"-{graph_value_text(rel)}->", graph_value_text(rel.end_node)]
        return "".join(parts)
    if isinstance(value, list) and any(isinstance(v, Node | Relationship | Path) for v in value):
        return [graph_value_text(v) for v in value]
    return value


def displayable(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of `frame` with graph values as text (columns without any are left as they are)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, Node | Relationship | Path | list)).any():
            out[column] = out[column].map(graph_value_text)
    return out


def _props(props: dict[str, object]) -> str:
    """Identifying properties first (they survive the cut), then the rest by name."""
    ordered = {k: props[k] for k in IDENTITY if k in props}
    ordered |= {k: props[k] for k in sorted(props) if k not in ordered}
    text = json.dumps(ordered, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
