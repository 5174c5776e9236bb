"""Folding graphs into the corpus aggregates (real Neo4j): folds that run at the same time count
every graph once, a graph deleted before its fold is not counted, and `circuitmap db aggregate`
folds what a killed run left pending."""

from __future__ import annotations

import threading

from neo4j import Driver
from typer.testing import CliRunner

from cli.main import app
from db.connection import Neo4jHandle, database_name
from db.schema import ensure_schema
from ingest.aggregate import Aggregator, FoldResult
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.ingest_helpers import (
    assert_database_consistent,
    small_computer,
    snapshot,
    wipe_database,
)


def write_pending(driver: Driver, n: int) -> list[str]:
    """`n` graphs written as a killed worker leaves them: complete, not yet folded."""
    ensure_schema(Neo4jHandle(driver, database_name()))
    computer = small_computer()
    writer = GraphWriter(Neo4jHandle(driver, database_name()), agg_pairs=-1)
    prompts = [PromptRecord.make(f"the capital of texas is {i}") for i in range(n)]
    return [writer.write_graph(p, computer.compute(p.text)).graph_uid for p in prompts]


def test_concurrent_folds_count_every_graph_once(clean_db: Driver) -> None:
    write_pending(clean_db, 16)
    folded: list[FoldResult] = []

    def fold() -> None:  # one graph per fold, so that the threads take turns many times
        folded.append(Aggregator(Neo4jHandle(clean_db, database_name()), max_graphs=1).fold_all())

    threads = [threading.Thread(target=fold) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.graphs for result in folded) == 16
    assert_database_consistent(clean_db)
    together = snapshot(clean_db)

    # The same graphs folded in one go give the same aggregates.
    wipe_database(clean_db)
    write_pending(clean_db, 16)
    assert Aggregator(Neo4jHandle(clean_db, database_name())).fold_all().graphs == 16
    assert snapshot(clean_db) == together


def test_db_aggregate_folds_what_a_killed_run_left(clean_db: Driver) -> None:
    write_pending(clean_db, 3)
    assert Aggregator(Neo4jHandle(clean_db, database_name())).pending() == 3
    result = CliRunner().invoke(app, ["db", "aggregate"])
    assert result.exit_code == 0, result.output
    assert "folded 3 graphs" in result.stdout
    assert_database_consistent(clean_db)
    again = CliRunner().invoke(app, ["db", "aggregate"])
    assert "folded 0 graphs" in again.stdout


def test_a_graph_deleted_before_its_fold_is_not_counted(clean_db: Driver) -> None:
    kept, deleted = write_pending(clean_db, 2)
    clean_db.execute_query(
        "MATCH (g:Graph {uid: $uid}) OPTIONAL MATCH (g)-[:HAS_NODE]->(n) DETACH DELETE g, n",
        uid=deleted,
        database_=database_name(),
    )
    result = Aggregator(Neo4jHandle(clean_db, database_name())).fold_all()
    assert (result.graphs, result.dropped) == (1, 1)
    assert_database_consistent(clean_db)  # every count is the one kept graph's
