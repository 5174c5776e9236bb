"""A node's input and output edges, strongest first, with each edge's weight share.

The share of an edge s -> t is |w| over the sum of |w| into t: the fraction of t's direct input it
carries (the row-normalised |A| that pruning uses). It drives edge width and the side pane."""

from __future__ import annotations

import pandas as pd

INFLUENCE_HINT = "smaller = more influential"
INFLUENCE_HELP = (
    "Influence is a cumulative rank: the share of the graph's total influence on the logits held "
    "by the nodes ranked up to and including this one, so smaller = more influential."
)
LABEL_COLUMNS = ["node_id", "kind", "layer", "position", "token", "label", "feature_uid"]


def with_shares(edges: pd.DataFrame) -> pd.DataFrame:
    """Copy of `edges` with a `share` column."""
    out = edges.copy()
    magnitude = out["weight"].abs()
    totals = magnitude.groupby(out["target"]).transform("sum")
    out["share"] = (magnitude / totals.where(totals > 0)).fillna(0.0)
    return out


def node_caption(row: pd.Series) -> str:
    """Short human name of a node, used in hover text, panes and selectors."""
    kind = row["kind"]
    if kind == "token":
        return f"'{row['token']}' @{row['position']}"
    if kind == "logit":
        return f"logit '{row['token']}'"
    if kind == "supernode":
        return str(row["label"])
    if kind == "error":
        return f"error L{row['layer']} @{row['position']}"
    label = row.get("label") or ""
    index = row.get("feature_index")
    index = "?" if index is None or pd.isna(index) else int(index)
    name = f"F L{row['layer']}/{index} @{row['position']}"
    return f"{name} {label}".strip() if label else name


def connections(
    nodes: pd.DataFrame, shared_edges: pd.DataFrame, node_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inputs, outputs) of `node_id`: one row per neighbour, sorted by |weight| descending."""
    info = nodes.set_index("node_id")
    captions = nodes["caption"] if "caption" in nodes.columns else nodes.apply(node_caption, axis=1)
    caption_of = dict(zip(nodes["node_id"], captions, strict=True))

    def side(mask: pd.Series, other: str) -> pd.DataFrame:
        part = shared_edges[mask]
        part = part.reindex(part["weight"].abs().sort_values(ascending=False).index)
        neighbour = part[other]
        return pd.DataFrame(
            {
                "node_id": neighbour.to_numpy(),
                "node": [caption_of.get(n, n) for n in neighbour],
                "kind": info["kind"].reindex(neighbour).to_numpy(),
                "weight": part["weight"].to_numpy(),
                "share": part["share"].to_numpy(),
            }
        )

    inputs = side(shared_edges["target"] == node_id, "source")
    outputs = side(shared_edges["source"] == node_id, "target")
    return inputs, outputs
