"""`circuitmap db migrate`: bring a database written by an older schema up to this code's version.

To version 3 (docs/schema.md), every edge is an `ATTR {weight}` relationship and every node has
`in_abs_weight`, the sum of |weight| over its incoming edges:
- from version 2, a node's `in_nodes` / `in_weights` lists become relationships from the nodes at
  those `idx` positions, and the lists go;
- from version 1, the edges are relationships already; nodes get their `idx`, catalog features
  their `number`, `AGG_ATTR` its `pair` key and only `n_graphs` and `sum_weight` besides, and the
  unused `:Node(kind)` and `:Node(token)` indexes go. Version 1 kept its aggregates up to date in
  each graph's transaction, so there is nothing pending to fold.

Graphs are migrated one transaction each, so a reader never sees half a graph, and a migration
that is stopped resumes where it was (a graph whose nodes all have `in_abs_weight` is done); the
version is recorded last, so the code refuses the database until everything is done.
"""

from __future__ import annotations

from collections.abc import Callable

from neo4j import ManagedTransaction

from db.connection import Neo4jHandle
from db.schema import (
    DROP_INDEX,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SchemaVersionError,
    database_version,
    ensure_schema,
)
from ingest.aggregate import LOCK, NUMBER_FEATURES, PAIR_KEY_BASE

MIGRATES_FROM = (1, 2)
RETIRED_INDEXES = ("node_kind", "node_token")
UNMIGRATED_GRAPHS = """
MATCH (g:Graph {status: 'complete'})
  WHERE EXISTS { (g)-[:HAS_NODE]->(n) WHERE n.in_abs_weight IS NULL }
RETURN g.uid AS uid ORDER BY uid
"""
# Version 1: node order within a graph as graph_nodes lists it; any fixed order would do.
NUMBER_NODES = """
MATCH (:Graph {uid: $uid})-[:HAS_NODE]->(n)
WITH n ORDER BY
  CASE n.kind WHEN 'token' THEN 0 WHEN 'feature' THEN 1 WHEN 'error' THEN 2 ELSE 3 END,
  n.layer, n.position, n.node_id
WITH collect(n) AS nodes
UNWIND range(0, size(nodes) - 1) AS i
WITH nodes[i] AS n, i
SET n.idx = i
"""
# Version 2: each node's input lists become relationships from the nodes at those positions.
LISTS_TO_EDGES = """
MATCH (:Graph {uid: $uid})-[:HAS_NODE]->(x)
WITH x ORDER BY x.idx
WITH collect(x) AS xs
UNWIND xs AS b
CALL (xs, b) {
  UNWIND range(0, size(coalesce(b.in_nodes, [])) - 1) AS i
  WITH xs[b.in_nodes[i]] AS a, b.in_weights[i] AS w
  CREATE (a)-[:ATTR {weight: w}]->(b)
  RETURN count(*) AS edges
}
REMOVE b.in_nodes, b.in_weights
RETURN sum(edges) AS edges
"""
SET_IN_ABS_WEIGHT = """
MATCH (:Graph {uid: $uid})-[:HAS_NODE]->(b)
CALL (b) {
  OPTIONAL MATCH (b)<-[r:ATTR]-()
  RETURN toFloat(coalesce(sum(abs(r.weight)), 0.0)) AS total
}
SET b.in_abs_weight = total
"""
UNNUMBERED = "MATCH (c:Feature) WHERE c.number IS NULL RETURN elementId(c) AS id ORDER BY c.uid"
KEY_PAIRS = """
MATCH (a:Feature)-[r:AGG_ATTR]->(b:Feature)
  WHERE r.pair IS NULL
CALL (a, b, r) {
  SET r.pair = a.number * $base + b.number
  REMOVE r.mean_weight, r.max_abs_weight
} IN TRANSACTIONS OF 20000 ROWS
"""
NUMBERS_PER_TRANSACTION = 20_000
SET_VERSION = "MATCH (s:SchemaInfo {name: $name}) SET s.version = $version"


def migrate(handle: Neo4jHandle, log: Callable[[str], None] = print) -> tuple[int | None, int]:
    """Migrate to SCHEMA_VERSION; returns (the version found, graphs migrated)."""
    found = database_version(handle)
    if found is None or found == SCHEMA_VERSION:
        ensure_schema(handle)
        return found, 0
    if found not in MIGRATES_FROM:
        raise SchemaVersionError(
            f"database schema version is {found}; this circuitmap migrates versions "
            f"{', '.join(map(str, MIGRATES_FROM))} to {SCHEMA_VERSION} only"
        )
    steps = (NUMBER_NODES, SET_IN_ABS_WEIGHT) if found == 1 else (LISTS_TO_EDGES, SET_IN_ABS_WEIGHT)
    with handle.session() as session:
        if found == 1:
            for name in RETIRED_INDEXES:
                session.run(DROP_INDEX, name=name).consume()
        uids = [record["uid"] for record in session.run(UNMIGRATED_GRAPHS)]
        for k, uid in enumerate(uids, 1):
            session.execute_write(_migrate_graph, uid, steps)
            if k % 100 == 0 or k == len(uids):
                log(f"migrated {k}/{len(uids)} graphs")
        if found == 1:
            _key_aggregates(session)
        session.run(SET_VERSION, name=SCHEMA_NAME, version=SCHEMA_VERSION).consume()
    ensure_schema(handle)
    return found, len(uids)


def _migrate_graph(tx: ManagedTransaction, uid: str, steps: tuple[str, ...]) -> None:
    for step in steps:
        tx.run(step, uid=uid).consume()


def _key_aggregates(session) -> None:
    """Version 1's catalog: features numbered, AGG_ATTR keyed by their numbers."""
    ids = [record["id"] for record in session.run(UNNUMBERED)]
    for lo in range(0, len(ids), NUMBERS_PER_TRANSACTION):
        session.execute_write(_number_features, ids[lo : lo + NUMBERS_PER_TRANSACTION])
    session.run(KEY_PAIRS, base=PAIR_KEY_BASE).consume()


def _number_features(tx: ManagedTransaction, ids: list[str]) -> None:
    tx.run(LOCK).consume()
    tx.run(NUMBER_FEATURES, ids=ids).consume()
