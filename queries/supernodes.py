"""Supernodes: named groups of catalog features, defined by a saved query or an explicit list.

A query-defined supernode is re-evaluated by `refresh_supernode` (on demand) and by
`refresh_all_supernodes` (which the ingest worker calls at the end of each run), so it also covers
graphs ingested after it was made. Membership lives in `(:Supernode)-[:GROUPS]->(:Feature)`; every
change of membership (and the creation) adds a `(:SupernodeRevision {at, members})`, the history.
The defining query runs through runner.py, so it gets the same safety check, READ transaction and
timeout as any user query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from neo4j import ManagedTransaction
from neo4j.exceptions import ConstraintError

from circuitmap.graph_json import graph_to_json
from db.connection import Neo4jHandle
from queries.collapse import GROUP_PREFIX, collapse
from queries.graph_reader import read_edges, read_graph
from queries.runner import run_cypher, run_query
from queries.saved import get_saved, validate_name

MAX_MEMBERS = 10_000
MEMBER_COLUMNS = ("feature_uid", "uid")

CREATE_SUPERNODE = """
CREATE (:Supernode {name: $name, description: $description, query_name: $query_name,
  params: $params, created_at: datetime()})
"""
SUPERNODE_ROWS = """
MATCH (s:Supernode) WHERE $name IS NULL OR s.name = $name
RETURN s, COLLECT { MATCH (s)-[:GROUPS]->(f) RETURN f.uid ORDER BY f.uid } AS members
ORDER BY s.name
"""
REVISIONS = "MATCH (:Supernode {name: $name})-[:HAS_REVISION]->(r) RETURN r ORDER BY r.at"
DELETE_SUPERNODE = """
MATCH (s:Supernode {name: $name}) OPTIONAL MATCH (s)-[:HAS_REVISION]->(r) DETACH DELETE s, r
"""
CURRENT_MEMBERS = """
MATCH (s:Supernode {name: $name})
RETURN COLLECT { MATCH (s)-[:GROUPS]->(f) RETURN f.uid } AS members,
  EXISTS { (s)-[:HAS_REVISION]->() } AS has_history
"""
REMOVE_MEMBERS = """
MATCH (s:Supernode {name: $name}) SET s.refreshed_at = datetime()
WITH s MATCH (s)-[g:GROUPS]->(f) WHERE f.uid IN $removed DELETE g
"""
ADD_MEMBERS = """
MATCH (s:Supernode {name: $name}) UNWIND $added AS uid
MATCH (f:Feature {uid: uid}) CREATE (s)-[:GROUPS]->(f)
"""
ADD_REVISION = """
MATCH (s:Supernode {name: $name})
CREATE (s)-[:HAS_REVISION]->(:SupernodeRevision {at: datetime(), members: $members})
"""
UNKNOWN_FEATURES = """
UNWIND $uids AS uid WITH uid WHERE NOT EXISTS { MATCH (:Feature {uid: uid}) } RETURN uid
"""


@dataclass
class Supernode:
    name: str
    description: str
    query_name: str | None
    params: dict[str, object]
    members: list[str]
    created_at: datetime | None = None
    refreshed_at: datetime | None = None


@dataclass
class RefreshResult:
    name: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


@dataclass
class Revision:
    at: datetime
    members: list[str]


def create_supernode(
    handle: Neo4jHandle,
    name: str,
    *,
    description: str = "",
    query_name: str | None = None,
    params: dict[str, object] | None = None,
    members: list[str] | None = None,
) -> Supernode:
    """Create a supernode from a saved query's feature uids, or from an explicit list (not both)."""
    validate_name(name, "supernode")
    if (query_name is None) == (members is None):
        raise ValueError("give either a saved query name or an explicit list of feature uids")
    params = dict(params or {})
    if query_name is not None:
        if get_saved(handle, query_name) is None:
            raise LookupError(f"no saved query named {query_name!r}")
        members = evaluate_members(handle, query_name, params)
    members = sorted(set(members or []))
    _require_features(handle, members)
    try:
        handle.write(
            CREATE_SUPERNODE,
            {
                "name": name,
                "description": description,
                "query_name": query_name,
                "params": json.dumps(params),
            },
        )
    except ConstraintError:
        raise ValueError(f"a supernode named {name!r} exists") from None
    _write_members(handle, name, members)
    return get_supernode(handle, name)


def evaluate_members(handle: Neo4jHandle, query_name: str, params: dict[str, object]) -> list[str]:
    """Run the defining query; read feature uids from column feature_uid, uid or its only column."""
    result = run_query(handle, query_name, params, row_cap=MAX_MEMBERS)
    if result.capped:
        raise ValueError(f"query {query_name!r} returns more than {MAX_MEMBERS} rows")
    frame = result.frame
    column = next((c for c in MEMBER_COLUMNS if c in frame.columns), None)
    if column is None and len(frame.columns) == 1:
        column = frame.columns[0]
    if column is None:
        raise ValueError(
            f"query {query_name!r} returns columns {', '.join(frame.columns)}: return one column, "
            "or name the feature uid column feature_uid"
        )
    values = frame[column].dropna().tolist()
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"query {query_name!r} column {column!r} must hold feature uid strings")
    return sorted(set(values))


def refresh_supernode(handle: Neo4jHandle, name: str) -> RefreshResult:
    """Re-evaluate a query-defined supernode; a list-defined one keeps its members."""
    node = _require(handle, name)
    if node.query_name is None:
        return RefreshResult(name)
    members = evaluate_members(handle, node.query_name, node.params)
    return _write_members(handle, name, members)


def refresh_all_supernodes(handle: Neo4jHandle) -> list[RefreshResult]:
    """Refresh every query-defined supernode; the ingest worker calls this after each run."""
    return [refresh_supernode(handle, s.name) for s in list_supernodes(handle) if s.query_name]


def get_supernode(handle: Neo4jHandle, name: str) -> Supernode | None:
    records = handle.read(SUPERNODE_ROWS, {"name": name})
    return _from_record(records[0]) if records else None


def list_supernodes(handle: Neo4jHandle) -> list[Supernode]:
    records = handle.read(SUPERNODE_ROWS, {"name": None})
    return [_from_record(r) for r in records]


def history(handle: Neo4jHandle, name: str) -> list[Revision]:
    """Membership revisions, oldest first."""
    _require(handle, name)
    records = handle.read(REVISIONS, {"name": name})
    return [Revision(r["r"]["at"].to_native(), list(r["r"]["members"])) for r in records]


def delete_supernode(handle: Neo4jHandle, name: str) -> None:
    _require(handle, name)
    handle.write(DELETE_SUPERNODE, {"name": name})


@dataclass
class CollapsedGraph:
    """A graph with supernode members merged (queries.collapse): `nodes` one row per group,
    `edges` summed between groups named by supernode name or node id (with each end's kind),
    `view_nodes` / `view_edges` the same in the graph view's columns, supernodes as `group:<name>`.
    """

    graph_uid: str
    nodes: pd.DataFrame
    edges: pd.DataFrame
    view_nodes: pd.DataFrame
    view_edges: pd.DataFrame


def collapsed_graph(
    handle: Neo4jHandle, graph_uid: str, names: list[str] | None = None
) -> CollapsedGraph:
    """The supernode-collapsed view of one graph (all supernodes, or the named ones)."""
    nodes = grouped_nodes(handle, graph_uid, names)
    members = nodes[nodes["in_supernode"]]
    groups = {name: part["node_id"].tolist() for name, part in members.groupby("group")}
    view_nodes, view_edges = collapse(
        nodes.drop(columns=["group", "in_supernode"]), read_edges(handle, graph_uid), groups
    )
    kind = dict(zip(view_nodes["node_id"], view_nodes["kind"], strict=True))
    edges = view_edges.assign(
        source_kind=view_edges["source"].map(kind), target_kind=view_edges["target"].map(kind)
    )
    for end in ("source", "target"):
        edges[end] = edges[end].str.removeprefix(GROUP_PREFIX)
    edges = edges.sort_values("weight", key=abs, ascending=False, ignore_index=True)
    summary = (
        nodes.groupby("group", sort=False)
        .agg(
            kind=("kind", "first"),
            n_members=("node_id", "size"),
            node_ids=("node_id", list),
            min_layer=("layer", "min"),
            max_layer=("layer", "max"),
            positions=("position", lambda p: sorted(set(p))),
        )
        .reset_index()
    )
    summary.loc[summary["group"].isin(groups), "kind"] = "supernode"
    columns = ["source", "target", "source_kind", "target_kind", "weight", "share", "n_edges"]
    return CollapsedGraph(graph_uid, summary, edges[columns], view_nodes, view_edges)


def grouped_nodes(
    handle: Neo4jHandle, graph_uid: str, names: list[str] | None = None
) -> pd.DataFrame:
    """The graph's nodes with `group` (supernode name, else node id) and `in_supernode`."""
    nodes = run_query(handle, "graph_nodes", {"graph": graph_uid}, row_cap=0).frame
    if nodes.empty:
        raise LookupError(f"no complete graph {graph_uid!r}")
    group_of = member_map(handle, names)
    supernode = [
        group_of.get(uid) if kind == "feature" else None
        for kind, uid in zip(nodes["kind"], nodes["feature_uid"], strict=True)
    ]
    nodes["in_supernode"] = [s is not None for s in supernode]
    nodes["group"] = [s or node_id for s, node_id in zip(supernode, nodes["node_id"], strict=True)]
    return nodes


def export_graph_json(
    handle: Neo4jHandle, graph_uid: str, names: list[str] | None = None
) -> dict[str, object]:
    """Neuronpedia graph JSON of one graph, its supernodes in `qParams.supernodes`.

    Each supernode with members in the graph becomes `[name, node_id, node_id, ...]` (its member
    instances in this graph; they are also pinned), written by circuitmap.graph_json.
    """
    record = read_graph(handle, graph_uid)
    nodes = grouped_nodes(handle, graph_uid, names)
    members = nodes[nodes["in_supernode"]]
    groups = [[name, *frame["node_id"]] for name, frame in members.groupby("group", sort=True)]
    record.metadata["qParams"] = {
        "supernodes": groups,
        "pinnedIds": [node_id for group in groups for node_id in group[1:]],
    }
    return graph_to_json(record)


def member_map(handle: Neo4jHandle, names: list[str] | None = None) -> dict[str, str]:
    """feature uid -> supernode name (a feature in several goes to the first name in order)."""
    chosen = [s for s in list_supernodes(handle) if names is None or s.name in names]
    missing = sorted(set(names or []) - {s.name for s in chosen})
    if missing:
        raise LookupError(f"no supernode named {missing[0]!r}")
    group_of: dict[str, str] = {}
    for node in chosen:
        for uid in node.members:
            group_of.setdefault(uid, node.name)
    return group_of


def _write_members(handle: Neo4jHandle, name: str, members: list[str]) -> RefreshResult:
    """Set GROUPS to exactly `members` and record a revision when membership changed."""
    members = sorted(set(members))

    def work(tx: ManagedTransaction) -> RefreshResult:
        old = tx.run(CURRENT_MEMBERS, name=name).single()
        before = set(old["members"])
        result = RefreshResult(name, sorted(set(members) - before), sorted(before - set(members)))
        tx.run(REMOVE_MEMBERS, name=name, removed=result.removed)
        tx.run(ADD_MEMBERS, name=name, added=result.added)
        if result.changed or not old["has_history"]:
            tx.run(ADD_REVISION, name=name, members=members)
        return result

    return handle.write_transaction(work)


def _require_features(handle: Neo4jHandle, uids: list[str]) -> None:
    result = run_cypher(handle, UNKNOWN_FEATURES, {"uids": uids}, row_cap=0, check=False)
    if not result.frame.empty:
        unknown = result.frame["uid"].tolist()
        raise ValueError(f"unknown feature uid(s): {', '.join(unknown[:5])}")


def _require(handle: Neo4jHandle, name: str) -> Supernode:
    found = get_supernode(handle, name)
    if found is None:
        raise LookupError(f"no supernode named {name!r}")
    return found


def _from_record(record) -> Supernode:
    node = record["s"]
    return Supernode(
        name=node["name"],
        description=node.get("description") or "",
        query_name=node.get("query_name"),
        params=json.loads(node.get("params") or "{}"),
        members=list(record["members"]),
        created_at=_native(node.get("created_at")),
        refreshed_at=_native(node.get("refreshed_at")),
    )


def _native(value):
    return value.to_native() if value is not None else None
