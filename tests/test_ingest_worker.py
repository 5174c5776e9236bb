"""The ingest worker against a real Neo4j: graphs equal the records, re-ingest is a no-op,
failures are recorded and retried, aggregates count each graph once, schema versions are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from neo4j import Driver

from db.connection import Neo4jHandle, database_name
from db.schema import SCHEMA_VERSION, SchemaVersionError, check_schema, ensure_schema
from ingest.compute import InlineExecutor
from ingest.corpus import Corpus
from ingest.worker import Worker, WorkerOptions
from ingest.writer import GraphWriter
from tests.ingest_helpers import (
    assert_database_consistent,
    assert_same_graph,
    query,
    small_computer,
    snapshot,
    write_corpus,
)


def run(driver: Driver, corpus: Corpus, computer=None, **options):
    ensure_schema(Neo4jHandle(driver, database_name()))
    worker = Worker(
        Neo4jHandle(driver, database_name()),
        InlineExecutor(computer or small_computer()),
        options=WorkerOptions(busy_poll_s=0.1, **options),
    )
    return worker.run(corpus)


def test_ingest_writes_each_graph_as_computed_and_reingest_changes_nothing(
    clean_db: Driver, tmp_path: Path
) -> None:
    rows = write_corpus(tmp_path / "corpus.jsonl", 6)
    computer = small_computer()
    summary = run(clean_db, Corpus(tmp_path / "corpus.jsonl"), computer)
    assert (summary.written, summary.failed, summary.already_done) == (6, 0, 0)
    for row in rows:
        record = computer.compute(str(row["text"]))
        uid = computer.spec.graph_uid(str(row["id"]))
        assert_same_graph(clean_db, uid, record)
        graph = query(
            clean_db, "MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph {uid: $u}) RETURN p, g", u=uid
        )
        prompt, g = graph[0]["p"], graph[0]["g"]
        assert (prompt["text"], prompt["tags"], prompt["answer"]) == (
            row["text"], row["tags"], row["answer"],
        )  # fmt: skip
        assert g["status"] == "complete" and g["n_edges"] == record.n_edges
        assert json.loads(g["settings"]) == computer.spec.settings
        assert g["replacement_score"] == record.scores["replacement"]
    assert_database_consistent(clean_db)
    assert query(clean_db, "MATCH (c:Claim) RETURN count(c) AS n")[0]["n"] == 0

    before = snapshot(clean_db)
    again = run(clean_db, Corpus(tmp_path / "corpus.jsonl"), computer)
    assert (again.written, again.already_done) == (0, 6)
    assert snapshot(clean_db) == before

    # A changed setting makes new graphs beside the old ones.
    changed = run(clean_db, Corpus(tmp_path / "corpus.jsonl"), small_computer(n_edges=300))
    assert changed.written == 6
    counts = query(clean_db, "MATCH (p:Prompt)-[:HAS_GRAPH]->(g) RETURN p.uid, count(g) AS n")
    assert {c["n"] for c in counts} == {2} and len(counts) == 6


def test_aggregates_match_the_graphs(clean_db: Driver, tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus.jsonl", 9)
    run(clean_db, Corpus(tmp_path / "corpus.jsonl"))
    assert_database_consistent(clean_db)
    # AGG_ATTR sums equal the per-graph feature-to-feature edges they summarise (all pairs kept
    # at this size: fewer than the per-graph cap).
    pairs = query(
        clean_db,
        "MATCH (a:Feature)-[r:AGG_ATTR]->(b:Feature)"
        " RETURN a.uid AS a, b.uid AS b, r.n_graphs AS n, r.sum_weight AS s",
    )
    edges = query(
        clean_db,
        "MATCH (a:Feature)<-[:INSTANCE_OF]-(x:FeatureNode)-[r:ATTR]->(y:FeatureNode)"
        "-[:INSTANCE_OF]->(b:Feature)"
        " WITH a.uid AS a, b.uid AS b, x.graph_uid AS g, sum(r.weight) AS w"
        " RETURN a, b, count(g) AS n, sum(w) AS s",
    )
    got = {(p["a"], p["b"]): (p["n"], p["s"]) for p in pairs}
    want = {(e["a"], e["b"]): (e["n"], e["s"]) for e in edges}
    assert got.keys() == want.keys()
    for key, (n, s) in want.items():
        assert got[key][0] == n and got[key][1] == pytest.approx(s, rel=1e-6, abs=1e-9)
    popular = query(clean_db, "MATCH (f:Feature) RETURN max(f.n_graphs) AS n")[0]["n"]
    assert popular >= 3  # shared features recur across graphs


def test_failures_are_recorded_with_line_numbers_and_retried(
    clean_db: Driver, tmp_path: Path
) -> None:
    path = tmp_path / "corpus.jsonl"
    long_prompt = " ".join(["dallas"] * 80)
    path.write_bytes(
        b'{"id": "a", "text": "dallas is in"}\n'
        b"{bad json\n"
        b'{"id": "b", "text": ""}\n'
        + json.dumps({"id": "long", "text": long_prompt}).encode()
        + b"\n"
        b'{"id": "c", "text": "caf\xe9"}\n'
        b'{"id": "d", "text": "the capital of texas is"}\n'
    )
    corpus = Corpus(path)
    summary = run(clean_db, corpus)
    assert (summary.written, summary.failed) == (2, 1)
    assert [(e.line, e.message.split(":")[0]) for e in corpus.errors] == [
        (2, "bad JSON at column 2"),
        (3, "empty text"),
        (5, "invalid UTF-8"),
    ]
    [failure] = summary.failures
    assert failure.line == 4 and failure.prompt_uid == "long"
    assert "more than the maximum" in failure.error
    failed = query(
        clean_db, "MATCH (g:Graph {status: 'failed'}) RETURN g.prompt_uid AS p, g.error AS e"
    )
    assert failed == [{"p": "long", "e": failure.error}]

    again = run(clean_db, Corpus(path))
    assert (again.written, again.failed, again.already_failed) == (0, 0, 1)
    roomy = small_computer()
    roomy.compute.max_tokens = 100  # the same spec: the graph uid is unchanged
    retried = run(clean_db, Corpus(path), roomy, retry_failed=True)
    assert (retried.written, retried.already_done) == (1, 2)
    statuses = query(clean_db, "MATCH (g:Graph) RETURN g.status AS s, count(*) AS n")
    assert statuses == [{"s": "complete", "n": 3}]
    assert_database_consistent(clean_db)


def test_a_computation_error_or_bad_graph_does_not_stop_the_run(
    clean_db: Driver, tmp_path: Path
) -> None:
    write_corpus(tmp_path / "corpus.jsonl", 4)
    base = small_computer()

    def compute(text: str):
        record = base.compute(text)
        if "is in" in text:
            raise RuntimeError("CUDA fell over")
        if text.startswith("calc"):
            record.edge_weight[0] = float("nan")
        return record

    computer = type(base)(compute, base.spec)
    summary = run(clean_db, Corpus(tmp_path / "corpus.jsonl"), computer)
    assert summary.written + summary.failed == 4 and summary.failed >= 2
    errors = {f.error.split(":")[0] for f in summary.failures}
    assert errors <= {"RuntimeError", "write failed"}
    assert_database_consistent(clean_db)


def test_schema_is_idempotent_and_versions_are_checked(clean_db: Driver) -> None:
    handle = Neo4jHandle(clean_db, database_name())
    assert check_schema(handle) is None  # fresh database: fine
    assert ensure_schema(handle) == ensure_schema(handle) == SCHEMA_VERSION
    names = query(clean_db, "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS n")[0]["n"]
    assert {"graph_uid", "node_key", "feature_uid", "claim_uid"} <= set(names)
    lookups = "SHOW INDEXES YIELD type, entityType WHERE type = 'LOOKUP' RETURN entityType AS e"
    assert query(clean_db, lookups) == [{"e": "NODE"}]  # writes skip the relationship one
    assert check_schema(handle) == SCHEMA_VERSION
    query(clean_db, "MATCH (s:SchemaInfo) SET s.version = 999")
    with pytest.raises(SchemaVersionError, match="version is 999, this code expects"):
        check_schema(handle)
    with pytest.raises(SchemaVersionError):
        ensure_schema(handle)


def test_writer_skips_a_complete_graph(clean_db: Driver) -> None:
    from ingest.corpus import PromptRecord

    ensure_schema(Neo4jHandle(clean_db, database_name()))
    computer = small_computer()
    prompt = PromptRecord.make("dallas is in")
    writer = GraphWriter(Neo4jHandle(clean_db, database_name()))
    first = writer.write_graph(prompt, computer.compute(prompt.text))
    second = writer.write_graph(prompt, computer.compute(prompt.text))
    assert (first.status, second.status) == ("written", "skipped")
    assert writer.status(first.graph_uid) == "complete"


def test_a_process_pool_computes_and_one_writer_writes(clean_db: Driver, tmp_path: Path) -> None:
    from ingest.compute import ComputeRecipe, ProcessExecutor
    from tests.ingest_helpers import SMALL

    ensure_schema(Neo4jHandle(clean_db, database_name()))
    write_corpus(tmp_path / "corpus.jsonl", 6)
    executor = ProcessExecutor(ComputeRecipe("synthetic", settings=SMALL), 2)
    try:
        summary = Worker(Neo4jHandle(clean_db, database_name()), executor).run(
            Corpus(tmp_path / "corpus.jsonl")
        )
    finally:
        executor.close()
    assert (summary.written, summary.failed) == (6, 0)
    assert executor.spec.hash == small_computer().spec.hash  # same graphs as computed inline
    assert_database_consistent(clean_db)
