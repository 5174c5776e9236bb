"""The worker under stress: SIGKILL mid-write then restart, two workers on one corpus, and the
database going away mid-run. Workers run as real `circuitmap ingest` processes where it matters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from neo4j import Driver

from db import server
from db.config import load_settings
from db.connection import Neo4jHandle, database_name, get_driver
from db.schema import ensure_schema
from ingest.compute import InlineExecutor
from ingest.corpus import Corpus
from ingest.worker import Worker, WorkerOptions
from tests.ingest_helpers import (
    assert_database_consistent,
    logged_synthetic,
    query,
    wipe_database,
    write_corpus,
)

CLI = [sys.executable, "-c", "from cli.main import app; app()"]


def ingest_process(corpus: Path, log: Path, *args: str, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "CM_TEST_COMPUTE_LOG": str(log), "CM_TEST_COMPUTE_DELAY": str(delay)}
    return subprocess.Popen(
        [*CLI, "ingest", str(corpus), "--compute", "tests.ingest_helpers:logged_synthetic", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def complete_graphs(driver: Driver) -> int:
    return query(driver, "MATCH (g:Graph {status: 'complete'}) RETURN count(g) AS n")[0]["n"]


# Big graphs, so that each statement of a graph's transaction (or of a fold) runs long enough to be
# caught running; every feature pair aggregated, so that a fold has tens of thousands of them.
KILL_ARGS = ["--set", "n_edges=30000", "--set", "n_features=400", "--agg-pairs", "-1"]


def killed_run(driver: Driver, tmp_path: Path, prompts: int, statement: str) -> tuple[Path, Path]:
    """Start `circuitmap ingest` on a corpus of `prompts` and SIGKILL it while one of its
    transactions runs a query containing `statement`; returns (corpus, log), to run it again."""
    ensure_schema(Neo4jHandle(driver, database_name()))
    corpus, log = tmp_path / "corpus.jsonl", tmp_path / "computed.log"
    write_corpus(corpus, prompts)
    worker = ingest_process(corpus, log, *KILL_ARGS)
    deadline = time.monotonic() + 240
    while True:
        assert worker.poll() is None, worker.communicate()[0]
        assert time.monotonic() < deadline, f"never saw the worker run {statement!r}"
        running = query(
            driver,
            "SHOW TRANSACTIONS YIELD currentQuery WHERE currentQuery CONTAINS $statement"
            " RETURN count(*) AS n",
            statement=statement,
        )[0]["n"]
        if running:
            break
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    return corpus, log


def pending(driver: Driver) -> int:
    return query(driver, "MATCH (p:PendingAggregate) RETURN count(p) AS n")[0]["n"]


def test_sigkill_mid_graph_write_then_restart_leaves_a_complete_database(
    clean_db: Driver, tmp_path: Path
) -> None:
    corpus, log = killed_run(clean_db, tmp_path, 6, "CREATE (x:Node)")
    written = complete_graphs(clean_db)
    assert written < 6
    # The graph being written is absent, not partial; the written ones wait to be folded.
    assert pending(clean_db) == written
    finish(ingest_process(corpus, log, *KILL_ARGS))
    assert complete_graphs(clean_db) == 6
    assert query(clean_db, "MATCH (c:Claim) RETURN count(c) AS n")[0]["n"] == 0
    assert_database_consistent(clean_db)


def test_sigkill_mid_fold_then_restart_counts_every_graph_once(
    clean_db: Driver, tmp_path: Path
) -> None:
    # The run's last fold, after all 3 graphs are written.
    corpus, log = killed_run(clean_db, tmp_path, 3, "AGG_ATTR")
    assert complete_graphs(clean_db) == 3
    assert pending(clean_db) == 3  # the fold was rolled back whole: nothing counted, nothing lost
    features = query(clean_db, "MATCH (f:Feature) RETURN max(f.n_graphs) AS n")[0]["n"]
    assert features is None
    out = finish(ingest_process(corpus, log, *KILL_ARGS))
    assert complete_graphs(clean_db) == 3 and "graphs folded" in out
    assert_database_consistent(clean_db)


def test_two_workers_on_one_corpus_never_compute_a_prompt_twice(
    clean_db: Driver, tmp_path: Path
) -> None:
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    corpus = tmp_path / "corpus.jsonl"
    rows = write_corpus(corpus, 12)
    log = tmp_path / "computed.log"
    args = ["--set", "n_edges=500", "--set", "n_features=40"]
    workers = [ingest_process(corpus, log, *args, delay=0.3) for _ in range(2)]
    for worker in workers:
        finish(worker)
    computed = [line.split("\t") for line in log.read_text().splitlines()]
    per_text = Counter(text for _, text in computed)
    assert sorted(per_text) == sorted({str(r["text"]) for r in rows})
    assert set(per_text.values()) == {1}
    graphs = query(clean_db, "MATCH (p:Prompt)-[:HAS_GRAPH]->(g) RETURN p.uid AS p, count(g) AS n")
    assert len(graphs) == len({r["text"] for r in rows}) and {g["n"] for g in graphs} == {1}
    assert_database_consistent(clean_db)


@pytest.fixture
def second_server(tmp_path_factory, monkeypatch):
    """A separate local server (own home and port) that the test may stop and start."""
    if load_settings().external:
        pytest.skip("NEO4J_URI names a server this test cannot stop; run it on the local server")
    home = Path(load_settings().home).with_name("ingest-restart")
    monkeypatch.setenv("CIRCUITMAP_HOME", str(home))
    monkeypatch.setenv("CIRCUITMAP_NEO4J_PORT", os.environ.get("CM_TEST_RESTART_PORT", "7712"))
    settings = load_settings()
    server.start(settings)
    try:
        with get_driver(settings, max_transaction_retry_time=1.0) as driver:
            wipe_database(driver)
            ensure_schema(Neo4jHandle(driver, database_name()))
            yield settings, driver
    finally:
        server.stop(settings)


def test_neo4j_stopped_and_restarted_during_a_run_loses_nothing(second_server, tmp_path) -> None:
    settings, driver = second_server
    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus, 30)
    log = tmp_path / "computed.log"
    os.environ["CM_TEST_COMPUTE_LOG"] = str(log)
    os.environ["CM_TEST_COMPUTE_DELAY"] = "0.2"  # still computing when the server stops
    try:
        computer = logged_synthetic(None, None, {"n_edges": 2000, "n_features": 100})
    finally:
        del os.environ["CM_TEST_COMPUTE_LOG"], os.environ["CM_TEST_COMPUTE_DELAY"]
    messages: list[str] = []
    worker = Worker(
        Neo4jHandle(driver, database_name()),
        InlineExecutor(computer),
        options=WorkerOptions(max_wait_s=300, max_backoff_s=2, busy_poll_s=0.2),
    )
    worker.reporter.log = messages.append
    result: list = []
    thread = threading.Thread(target=lambda: result.append(worker.run(Corpus(corpus))))
    thread.start()
    while worker.summary.written < 2:
        assert thread.is_alive()
        time.sleep(0.05)
    server.stop(settings)
    time.sleep(2)
    server.start(settings)
    thread.join(timeout=300)
    print("\n".join(messages))
    assert result, "the worker did not finish"
    summary = result[0]
    assert summary.written + summary.already_done == 30 and summary.failed == 0
    assert any("waiting for Neo4j" in m for m in messages)
    assert complete_graphs(driver) == 30
    assert_database_consistent(driver)


def test_an_outage_logs_circuitmaps_waiting_lines_not_the_drivers(
    second_server, tmp_path, monkeypatch
) -> None:
    """`circuitmap ingest` across a server restart: clear "waiting for Neo4j" lines, none of the
    driver's own retry and connection warnings (about 80 of them before)."""
    settings, driver = second_server
    monkeypatch.setenv("COLUMNS", "300")  # one console line per message
    corpus, log = tmp_path / "corpus.jsonl", tmp_path / "computed.log"
    write_corpus(corpus, 30)
    args = ("--set", "n_edges=2000", "--set", "n_features=100")
    worker = ingest_process(corpus, log, *args, delay=0.5)  # still computing when the server stops
    deadline = time.monotonic() + 240
    while complete_graphs(driver) < 2:
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()[0]
        time.sleep(0.1)
    server.stop(settings)
    # down longer than the driver's own retries (`circuitmap ingest` gives it 5 s), while the
    # worker computes a graph every 0.5 s: the writer must fall back to circuitmap's waiting
    time.sleep(8)
    server.start(settings)
    out = finish(worker)
    waiting = [line for line in out.splitlines() if "waiting for Neo4j" in line]
    assert waiting, out
    assert all(line.endswith(" s)") and "\n" not in line for line in waiting), waiting
    for noise in ("will be retried", "Failed to establish", "defunct", "routing information"):
        assert noise not in out, out
    assert complete_graphs(driver) == 30
