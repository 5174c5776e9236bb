"""`circuitmap db migrate`: bring a database written by an older schema up to this code's version.

Version 1 -> 2 (docs/schema.md): edges move from `ATTR` relationships into their targets' `in_nodes`
/ `in_weights` lists, nodes get their `idx`, catalog features their `number`, `AGG_ATTR` its
`pair` key and only `n_graphs` and `sum_weight` besides, and the unused `:Node(kind)` and
`:Node(token)` indexes go. Graphs are migrated one transaction each, so a reader never sees half a
graph and a migration that is stopped resumes where it was; the version is recorded last, so the
code refuses the database until everything is done. Version 1 kept its aggregates up to date in
each graph's transaction, so there is nothing pending to fold.
"""

from __future__ import annotations

from collections.abc import Callable

from neo4j import Driver

from db.schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SchemaVersionError,
    database_version,
    ensure_schema,
)
from ingest.aggregate import LOCK, NUMBER_FEATURES, PAIR_KEY_BASE

RETIRED_INDEXES = ("node_kind", "node_token")
UNMIGRATED_GRAPHS = """
MATCH (g:Graph {status: 'complete'})
  WHERE EXISTS { (g)-[:HAS_NODE]->(n) WHERE n.idx IS NULL }
RETURN g.uid AS uid ORDER BY uid
"""
# Node order within a graph as graph_nodes lists it; any fixed order would do.
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
# Inputs strongest |weight| first, ties by source idx: the order the writer stores.
EDGES_TO_LISTS = """
MATCH (:Graph {uid: $uid})-[:HAS_NODE]->(b)
CALL (b) {
  OPTIONAL MATCH (a)-[r:ATTR]->(b)
  WITH a, r ORDER BY abs(r.weight) DESC, a.idx
  RETURN [x IN collect([a.idx, r.weight]) WHERE x[0] IS NOT NULL] AS inputs
}
SET b.in_nodes = [x IN inputs | x[0]], b.in_weights = [x IN inputs | x[1]]
WITH b
MATCH ()-[r:ATTR]->(b)
DELETE r
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


def migrate(
    driver: Driver, database: str | None = None, log: Callable[[str], None] = print
) -> tuple[int | None, int]:
    """Migrate to SCHEMA_VERSION; returns (the version found, graphs migrated)."""
    found = database_version(driver, database)
    if found is None or found == SCHEMA_VERSION:
        ensure_schema(driver, database)
        return found, 0
    if found != 1:
        raise SchemaVersionError(
            f"database schema version is {found}; this circuitmap migrates versions 1 to "
            f"{SCHEMA_VERSION} only"
        )
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        for name in RETIRED_INDEXES:
            session.run(f"DROP INDEX {name} IF EXISTS").consume()
        uids = [record["uid"] for record in session.run(UNMIGRATED_GRAPHS)]
        for k, uid in enumerate(uids, 1):
            session.execute_write(_migrate_graph, uid)
            if k % 100 == 0 or k == len(uids):
                log(f"migrated {k}/{len(uids)} graphs")
        ids = [record["id"] for record in session.run(UNNUMBERED)]
        for lo in range(0, len(ids), NUMBERS_PER_TRANSACTION):
            chunk = ids[lo : lo + NUMBERS_PER_TRANSACTION]
            session.execute_write(_number_features, chunk)
        session.run(KEY_PAIRS, base=PAIR_KEY_BASE).consume()
        session.run(SET_VERSION, name=SCHEMA_NAME, version=SCHEMA_VERSION).consume()
    ensure_schema(driver, database)
    return found, len(uids)


def _number_features(tx, ids: list[str]) -> None:
    tx.run(LOCK).consume()
    tx.run(NUMBER_FEATURES, ids=ids).consume()


def _migrate_graph(tx, uid: str) -> None:
    tx.run(NUMBER_NODES, uid=uid).consume()
    tx.run(EDGES_TO_LISTS, uid=uid).consume()
