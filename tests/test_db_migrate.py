"""Schema versions (real Neo4j): a database written by schema 1 (edges as `ATTR` relationships) is
refused by every command with what to do, and `circuitmap db migrate` turns it into schema 2 with
every graph, aggregate and supernode kept."""

from __future__ import annotations

import pytest
from neo4j import Driver
from typer.testing import CliRunner

from cli.main import app
from db.connection import database_name
from db.schema import SCHEMA_VERSION, ensure_schema
from ingest.aggregate import Aggregator
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.ingest_helpers import (
    assert_database_consistent,
    assert_same_graph,
    query,
    small_computer,
    wipe_database,
)

# Schema 1, rebuilt from a schema 2 database: edges back into weighted ATTR relationships, the
# node numbering and edge lists gone, AGG_ATTR with its two derived properties, the old indexes.
TO_VERSION_1 = (
    "MATCH (b:Node) UNWIND range(0, size(b.in_nodes) - 1) AS i"
    " MATCH (a:Node {graph_uid: b.graph_uid, idx: b.in_nodes[i]})"
    " CREATE (a)-[:ATTR {weight: b.in_weights[i]}]->(b)",
    "MATCH (n:Node) REMOVE n.idx, n.in_nodes, n.in_weights",
    "MATCH ()-[r:AGG_ATTR]->()"
    " SET r.mean_weight = r.sum_weight / r.n_graphs, r.max_abs_weight = abs(r.sum_weight)"
    " REMOVE r.pair",
    "MATCH (f:Feature) REMOVE f.number",
    "MATCH (l:AggregateLock) DELETE l",
    "DROP CONSTRAINT node_position",
    "DROP CONSTRAINT feature_number",
    "DROP CONSTRAINT agg_attr_pair",
    "CREATE INDEX node_kind IF NOT EXISTS FOR (n:Node) ON (n.kind)",
    "MATCH (s:SchemaInfo) SET s.version = 1",
)


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def version_1(clean_db: Driver):
    """Four graphs and their aggregates, as schema 1 stored them."""
    ensure_schema(clean_db, database_name())
    computer = small_computer()
    prompts = [PromptRecord.make(f"dallas is in texas {i}", corpus="old") for i in range(4)]
    graphs = [computer.compute(p.text) for p in prompts]
    writer = GraphWriter(clean_db, database_name())
    uids = [writer.write_graph(p, g).graph_uid for p, g in zip(prompts, graphs, strict=True)]
    Aggregator(clean_db, database_name()).fold_all()
    aggregates = _aggregates(clean_db)
    for statement in TO_VERSION_1:
        query(clean_db, statement)
    yield clean_db, dict(zip(uids, graphs, strict=True)), aggregates
    wipe_database(clean_db)  # the next test's clean database has schema 2's indexes
    query(clean_db, "DROP INDEX node_kind IF EXISTS")
    ensure_schema(clean_db, database_name())


def _aggregates(driver: Driver) -> list[dict]:
    return query(
        driver,
        "MATCH (f:Feature) OPTIONAL MATCH (f)-[r:AGG_ATTR]->(b)"
        " RETURN f.uid AS f, f.n_graphs AS n, collect([b.uid, r.n_graphs, r.sum_weight]) AS out"
        " ORDER BY f",
    )


def test_commands_refuse_an_old_database_and_say_how_to_migrate(version_1) -> None:
    refused = cli("query", "run", "graph_summary", "-p", "graph=x")
    assert refused.exit_code == 1
    assert f"schema version is 1, this code expects {SCHEMA_VERSION}" in refused.stderr
    assert "circuitmap db migrate" in refused.stderr
    assert cli("db", "aggregate").exit_code == 1


def test_migrate_keeps_every_graph_and_aggregate(version_1) -> None:
    driver, graphs, aggregates = version_1
    migrated = cli("db", "migrate")
    assert migrated.exit_code == 0, migrated.output
    assert f"schema version 1 -> {SCHEMA_VERSION} (4 graphs migrated)" in migrated.stdout
    for uid, graph in graphs.items():
        assert_same_graph(driver, uid, graph)
    assert query(driver, "MATCH ()-[r:ATTR]->() RETURN count(r) AS n") == [{"n": 0}]
    assert query(
        driver, "MATCH ()-[r:AGG_ATTR]->() WHERE r.mean_weight IS NOT NULL RETURN count(r) AS n"
    ) == [{"n": 0}]
    assert _aggregates(driver) == aggregates
    indexes = {r["name"] for r in query(driver, "SHOW INDEXES YIELD name RETURN name")}
    assert "node_kind" not in indexes and "node_position" in indexes
    # Inputs are stored strongest first, as the writer stores them.
    for row in query(driver, "MATCH (n:Node) RETURN n.in_weights AS w"):
        assert [abs(w) for w in row["w"]] == sorted((abs(w) for w in row["w"]), reverse=True)
    assert_database_consistent(driver)
    unkeyed = "MATCH ()-[r:AGG_ATTR]->() WHERE r.pair IS NULL RETURN count(r) AS n"
    assert query(driver, unkeyed) == [{"n": 0}]
    # The migrated database takes new graphs, folded into the same aggregates.
    prompt = PromptRecord.make("dallas is in texas 9", corpus="new")
    GraphWriter(driver, database_name()).write_graph(prompt, small_computer().compute(prompt.text))
    assert Aggregator(driver, database_name()).fold_all().graphs == 1
    assert_database_consistent(driver)
    again = cli("db", "migrate")
    assert again.exit_code == 0 and "nothing to migrate" in again.stdout
    ran = cli("query", "run", "graph_edges", "-p", f"graph={next(iter(graphs))}", "--format", "csv")
    assert ran.exit_code == 0 and len(ran.stdout.splitlines()) > 10
