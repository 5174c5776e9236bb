"""Several graphs per transaction (real Neo4j): a batch stores exactly what writing its graphs one
by one stores, and folding their contributions together gives exactly the aggregates of folding
them one by one; the worker batches graphs that wait for the writer, and a graph the server
refuses is recorded as failed without costing the rest of its batch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from neo4j import Driver

from circuitmap.synthetic import synthetic_prompts
from db.connection import Neo4jHandle, database_name
from db.schema import ensure_schema
from ingest.aggregate import Aggregator
from ingest.compute import InlineExecutor
from ingest.corpus import Corpus, PromptRecord
from ingest.payload import GraphPayload, failure_payload
from ingest.spec import GraphSpec
from ingest.worker import Worker, WorkerOptions
from ingest.writer import GraphWriter, WriteResult
from tests.ingest_helpers import (
    assert_database_consistent,
    assert_same_graph,
    query,
    small_computer,
    snapshot,
    wipe_database,
    write_corpus,
)


@pytest.fixture
def computed():
    """Eight graphs of one synthetic model (their features recur across graphs) and one prompt
    whose computation failed."""
    computer = small_computer()
    texts = [f"{r['text']} ({i})" for i, r in enumerate(synthetic_prompts(9, 3))]
    prompts = [PromptRecord.make(text, corpus="c") for text in texts]
    graphs = [computer.compute(p.text) for p in prompts[:8]]
    return computer, prompts, graphs


def test_a_batch_stores_what_one_by_one_writes_store(clean_db: Driver, computed) -> None:
    computer, prompts, graphs = computed
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    writer = GraphWriter(Neo4jHandle(clean_db, database_name()), agg_pairs=-1)
    aggregator = Aggregator(Neo4jHandle(clean_db, database_name()))
    failed = prompts[8]
    for prompt, graph in zip(prompts, graphs, strict=False):
        assert writer.write_graph(prompt, graph).status == "written"
        assert aggregator.pending() == 1
        assert aggregator.fold().graphs == 1
    writer.write_failure(failed, computer.spec, "RuntimeError: out of memory")
    assert aggregator.pending() == 0  # a failure contributes nothing
    one_by_one = snapshot(clean_db)
    assert one_by_one["pairs"] and max(f["f.n_graphs"] for f in one_by_one["features"]) >= 3

    wipe_database(clean_db)
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    payloads = [writer.payload(p, g) for p, g in zip(prompts, graphs, strict=False)]
    failure = failure_payload(failed, computer.spec, "RuntimeError: out of memory")
    results = writer.write([*payloads, failure, payloads[0]])
    assert [r.status for r in results] == ["written"] * 8 + ["failed", "skipped"]
    assert [r.n_edges for r in results[:8]] == [g.n_edges for g in graphs]
    assert aggregator.fold_all().graphs == 8
    assert snapshot(clean_db) == one_by_one
    for prompt, graph in zip(prompts, graphs, strict=False):
        assert_same_graph(clean_db, computer.spec.graph_uid(prompt.uid), graph)
    assert_database_consistent(clean_db)

    # Again: nothing changes. A computed graph for the failed prompt replaces its failure.
    again = writer.write([*payloads, failure])
    assert {r.status for r in again} == {"skipped"}
    assert snapshot(clean_db) == one_by_one
    retried = writer.write([writer.payload(failed, computer.compute(failed.text))])
    assert retried[0].status == "written"
    assert aggregator.fold().graphs == 1
    statuses = query(clean_db, "MATCH (g:Graph) RETURN g.status AS s, count(*) AS n")
    assert statuses == [{"s": "complete", "n": 9}]
    assert_database_consistent(clean_db)


def test_edges_split_over_several_statements_store_the_same_graphs(
    clean_db: Driver, computed
) -> None:
    """A graph with more edges than one statement takes (350k-edge graphs) is written in several
    statements of its transaction: each edge once, between the right nodes, in_abs_weight whole."""
    _, prompts, graphs = computed
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    writer = GraphWriter(Neo4jHandle(clean_db, database_name()), edges_per_statement=97)
    assert max(g.n_edges for g in graphs) > 3 * 97
    results = writer.write([writer.payload(p, g) for p, g in zip(prompts, graphs, strict=False)])
    assert [r.n_edges for r in results] == [g.n_edges for g in graphs]
    for prompt, graph in zip(prompts, graphs, strict=False):
        assert_same_graph(clean_db, GraphSpec.of(graph).graph_uid(prompt.uid), graph)
    Aggregator(Neo4jHandle(clean_db, database_name())).fold_all()
    assert_database_consistent(clean_db)


class HeldWriter(GraphWriter):
    """Holds its first write until every other graph waits in the worker's queue, so the next
    write has a full batch; records the size of every transaction."""

    def __init__(self, driver: Driver, waiting: int):
        super().__init__(Neo4jHandle(driver, database_name()))
        self.sizes: list[int] = []
        self.waiting = waiting
        self.worker: Worker | None = None

    def write(self, payloads: list[GraphPayload]) -> list[WriteResult]:
        deadline = time.monotonic() + 60  # a broken worker fails the test rather than hang it
        while not self.sizes and self.worker._queue.qsize() < self.waiting:
            assert time.monotonic() < deadline, "the other graphs never waited for the writer"
            time.sleep(0.05)
        self.sizes.append(len(payloads))
        return super().write(payloads)


def test_the_worker_batches_waiting_graphs_and_isolates_a_refused_one(
    clean_db: Driver, tmp_path: Path
) -> None:
    rows = write_corpus(tmp_path / "corpus.jsonl", 7)
    base = small_computer()
    refused = str(rows[4]["text"])

    def compute(text: str):
        record = base.compute(text)
        if text == refused:  # a property Neo4j cannot store: the server rejects the graph
            record.nodes[0].label = {"not": "a string"}
        return record

    computer = type(base)(compute, base.spec)
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    writer = HeldWriter(clean_db, waiting=6)
    worker = Worker(
        Neo4jHandle(clean_db, database_name()),
        InlineExecutor(computer),
        writer=writer,
        options=WorkerOptions(busy_poll_s=0.1, batch_graphs=8),
    )
    writer.worker = worker
    summary = worker.run(Corpus(tmp_path / "corpus.jsonl"))
    assert (summary.written, summary.failed) == (6, 1)
    assert writer.sizes[:2] == [1, 6]  # the held graph, then the six that waited, together
    assert summary.failures[0].line == 5 and summary.failures[0].error.startswith("write failed")
    for row in rows:
        uid = base.spec.graph_uid(str(row["id"]))
        if row["text"] != refused:
            assert_same_graph(clean_db, uid, base.compute(str(row["text"])))
    assert_database_consistent(clean_db)


def test_a_large_graph_does_not_take_others_into_its_transaction(
    clean_db: Driver, tmp_path: Path
) -> None:
    write_corpus(tmp_path / "corpus.jsonl", 5)
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    writer = HeldWriter(clean_db, waiting=4)
    computer = small_computer()  # 600 edges per graph: two fit under 1,000, a third does not
    worker = Worker(
        Neo4jHandle(clean_db, database_name()),
        InlineExecutor(computer),
        writer=writer,
        options=WorkerOptions(busy_poll_s=0.1, batch_graphs=8, batch_edges=1000),
    )
    writer.worker = worker
    assert worker.run(Corpus(tmp_path / "corpus.jsonl")).written == 5
    assert writer.sizes == [1, 2, 2]
    assert_database_consistent(clean_db)
