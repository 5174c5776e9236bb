"""Schema versions (real Neo4j): a database written by schema 1 (edges as `ATTR` relationships,
no node numbering) or schema 2 (edges as input lists on their targets) is refused by every command
with what to do, and `circuitmap db migrate` turns it into schema 3 with every node, edge and
aggregate kept, resuming where a stopped migration left off."""

from __future__ import annotations

import pytest
from neo4j import Driver
from typer.testing import CliRunner

from cli.main import app
from db.connection import Neo4jHandle, database_name
from db.schema import SCHEMA_VERSION, ensure_schema
from ingest.aggregate import Aggregator
from ingest.corpus import PromptRecord
from ingest.migrations import LISTS_TO_EDGES, SET_IN_ABS_WEIGHT, _migrate_graph
from ingest.writer import GraphWriter
from tests.ingest_helpers import (
    assert_database_consistent,
    assert_same_graph,
    query,
    small_computer,
    wipe_database,
)

# Schema 1, rebuilt from a schema 3 database: the node numbering and in_abs_weight gone, AGG_ATTR
# with its two derived properties, the old indexes.
TO_VERSION_1 = (
    "MATCH (n:Node) REMOVE n.idx, n.in_abs_weight",
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
# Schema 2, rebuilt from a schema 3 database: each node's inputs as lists, strongest first, the
# ATTR relationships and in_abs_weight gone.
TO_VERSION_2 = (
    "MATCH (b:Node) CALL (b) {"
    " OPTIONAL MATCH (a)-[r:ATTR]->(b) WITH a, r ORDER BY abs(r.weight) DESC, a.idx"
    " RETURN [x IN collect([a.idx, r.weight]) WHERE x[0] IS NOT NULL] AS inputs }"
    " SET b.in_nodes = [x IN inputs | x[0]], b.in_weights = [x IN inputs | x[1]]"
    " REMOVE b.in_abs_weight",
    "MATCH ()-[r:ATTR]->() DELETE r",
    "MATCH (s:SchemaInfo) SET s.version = 2",
)
OLD_SCHEMAS = {1: TO_VERSION_1, 2: TO_VERSION_2}


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(params=sorted(OLD_SCHEMAS))
def old_database(request, clean_db: Driver):
    """Four graphs and their aggregates, as schema 1 or 2 stored them; under schema 2 one graph
    is not folded yet (schema 1 had no pending contributions)."""
    version = request.param
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    computer = small_computer()
    prompts = [PromptRecord.make(f"dallas is in texas {i}", corpus="old") for i in range(4)]
    graphs = [computer.compute(p.text) for p in prompts]
    writer = GraphWriter(Neo4jHandle(clean_db, database_name()))
    uids = [writer.write_graph(p, g).graph_uid for p, g in zip(prompts, graphs, strict=True)]
    Aggregator(Neo4jHandle(clean_db, database_name())).fold_all()
    aggregates = _aggregates(clean_db)
    if version == 2:
        prompt = PromptRecord.make("dallas is in texas 4", corpus="old")
        graph = computer.compute(prompt.text)
        uids.append(writer.write_graph(prompt, graph).graph_uid)
        graphs.append(graph)
    for statement in OLD_SCHEMAS[version]:
        query(clean_db, statement)
    yield version, clean_db, dict(zip(uids, graphs, strict=True)), aggregates
    wipe_database(clean_db)  # the next test's clean database has schema 3's indexes
    query(clean_db, "DROP INDEX node_kind IF EXISTS")
    ensure_schema(Neo4jHandle(clean_db, database_name()))


def _aggregates(driver: Driver) -> list[dict]:
    return query(
        driver,
        "MATCH (f:Feature) OPTIONAL MATCH (f)-[r:AGG_ATTR]->(b)"
        " RETURN f.uid AS f, f.n_graphs AS n, collect([b.uid, r.n_graphs, r.sum_weight]) AS out"
        " ORDER BY f",
    )


def test_commands_refuse_an_old_database_and_say_how_to_migrate(old_database) -> None:
    version = old_database[0]
    refused = cli("query", "run", "graph_summary", "-p", "graph=x")
    assert refused.exit_code == 1
    assert f"schema version is {version}, this code expects {SCHEMA_VERSION}" in refused.stderr
    assert "circuitmap db migrate" in refused.stderr
    assert cli("db", "aggregate").exit_code == 1


def test_migrate_keeps_every_node_edge_and_aggregate(old_database) -> None:
    version, driver, graphs, aggregates = old_database
    if version == 2:  # a migration stopped after its first graph resumes with the others
        first = sorted(graphs)[0]
        steps = (LISTS_TO_EDGES, SET_IN_ABS_WEIGHT)
        Neo4jHandle(driver, database_name()).write_transaction(_migrate_graph, first, steps)
    migrated = cli("db", "migrate")
    assert migrated.exit_code == 0, migrated.output
    n = len(graphs) - (version == 2)
    assert f"schema version {version} -> {SCHEMA_VERSION} ({n} graphs migrated)" in migrated.stdout
    for uid, graph in graphs.items():  # nodes with their properties and in_abs_weight, edges
        assert_same_graph(driver, uid, graph)
    leftovers = "MATCH (n:Node) WHERE n.in_nodes IS NOT NULL OR n.in_weights IS NOT NULL"
    assert query(driver, leftovers + " RETURN count(n) AS n") == [{"n": 0}]
    assert query(
        driver, "MATCH ()-[r:AGG_ATTR]->() WHERE r.mean_weight IS NOT NULL RETURN count(r) AS n"
    ) == [{"n": 0}]
    unkeyed = "MATCH ()-[r:AGG_ATTR]->() WHERE r.pair IS NULL RETURN count(r) AS n"
    assert query(driver, unkeyed) == [{"n": 0}]
    indexes = {r["name"] for r in query(driver, "SHOW INDEXES YIELD name RETURN name")}
    assert "node_kind" not in indexes and "node_position" in indexes
    assert _aggregates(driver) == aggregates
    # The graph schema 2 left pending folds into them; so does a new graph.
    handle = Neo4jHandle(driver, database_name())
    assert Aggregator(handle).fold_all().graphs == (version == 2)
    prompt = PromptRecord.make("dallas is in texas 9", corpus="new")
    GraphWriter(handle).write_graph(prompt, small_computer().compute(prompt.text))
    assert Aggregator(handle).fold_all().graphs == 1
    assert_database_consistent(driver)
    version_now = "MATCH (s:SchemaInfo) RETURN s.version AS v"
    assert query(driver, version_now) == [{"v": SCHEMA_VERSION}]
    again = cli("db", "migrate")
    assert again.exit_code == 0 and "nothing to migrate" in again.stdout
    ran = cli("query", "run", "graph_edges", "-p", f"graph={next(iter(graphs))}", "--format", "csv")
    assert ran.exit_code == 0 and len(ran.stdout.splitlines()) > 10
