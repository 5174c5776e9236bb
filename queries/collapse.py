"""Collapse groups of a graph's nodes (supernodes, or groups made in the dashboard) into one node
each, summing the edges between groups: the one implementation every caller uses."""

from __future__ import annotations

import pandas as pd

GROUP_PREFIX = "group:"


def collapse(
    nodes: pd.DataFrame, edges: pd.DataFrame, groups: dict[str, list[str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes with each group replaced by one `supernode` row named `group:<name>` (at its members'
    mean layer and last position, activation summed, influence that of its most influential
    member), and edges re-pointed and summed (`n_edges` member edges each); edges inside a group
    are dropped. `share` is |weight| / sum of |weight| into the target, as in the path queries."""
    owner = {m: name for name, members in groups.items() for m in members}
    node_ids = set(nodes["node_id"])
    rows = []
    for name, members in groups.items():
        part = nodes[nodes["node_id"].isin(members)]
        if part.empty:
            continue
        rows.append(
            {
                "node_id": GROUP_PREFIX + name,
                "kind": "supernode",
                "layer": int(round(part["layer"].mean())),
                "position": int(part["position"].max()),
                "token": part["token"].iloc[int(part["position"].to_numpy().argmax())],
                "feature_index": None,
                "feature_uid": None,
                "activation": part["activation"].sum(min_count=1),
                "influence": part["influence"].min(),
                "probability": None,
                "label": f"{name} ({len(part)})",
            }
        )
    kept = nodes[~nodes["node_id"].isin(owner)]
    merged = pd.concat([kept, pd.DataFrame(rows, columns=nodes.columns)], ignore_index=True)
    mapped = edges[edges["source"].isin(node_ids) & edges["target"].isin(node_ids)].copy()
    for end in ("source", "target"):
        mapped[end] = mapped[end].map(lambda n: GROUP_PREFIX + owner[n] if n in owner else n)
    mapped = mapped[mapped["source"] != mapped["target"]]
    summed = mapped.groupby(["source", "target"], as_index=False, sort=False).agg(
        weight=("weight", "sum"), n_edges=("weight", "size")
    )
    into = summed["weight"].abs().groupby(summed["target"]).transform("sum")
    summed["share"] = summed["weight"].abs() / into
    return merged.reset_index(drop=True), summed
