"""The database foundation: reads and writes through the fixtures; the local server's lifecycle."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver
from neo4j.exceptions import ClientError

from db import server
from db.config import Settings, load_settings
from db.connection import database_name, get_driver
from db.jars import DbError, install_jars, jars_ready, java_executable


def test_write_graph_and_read_it_back(clean_db: Driver) -> None:
    rows = [{"id": f"n{i}", "layer": i % 3} for i in range(6)]
    edges = [{"s": f"n{i}", "t": f"n{i + 1}", "w": 0.5 * i} for i in range(5)]
    db = database_name()
    clean_db.execute_query(
        "UNWIND $rows AS r CREATE (:Node {id: r.id, layer: r.layer})", rows=rows, database_=db
    )
    clean_db.execute_query(
        "UNWIND $edges AS e MATCH (s:Node {id: e.s}), (t:Node {id: e.t})"
        " CREATE (s)-[:ATTR {weight: e.w}]->(t)",
        edges=edges,
        database_=db,
    )
    records, _, _ = clean_db.execute_query(
        "MATCH p = (:Node {id: 'n0'})-[:ATTR*5]->(:Node {id: 'n5'})"
        " RETURN [n IN nodes(p) | n.id] AS ids, [r IN relationships(p) | r.weight] AS weights",
        database_=db,
        routing_="r",
    )
    assert records[0]["ids"] == [f"n{i}" for i in range(6)]
    assert records[0]["weights"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    counts, _, _ = clean_db.execute_query(
        "MATCH (n:Node) OPTIONAL MATCH (n)-[r:ATTR]->()"
        " RETURN count(DISTINCT n) AS n, count(r) AS r",
        database_=db,
    )
    assert (counts[0]["n"], counts[0]["r"]) == (6, 5)


def test_server_refuses_a_write_in_a_read_transaction(clean_db: Driver) -> None:
    with clean_db.session(database=database_name()) as session, pytest.raises(ClientError) as err:
        session.execute_read(lambda tx: tx.run("CREATE (:Intruder)").consume())
    assert err.value.code == "Neo.ClientError.Statement.AccessMode"
    records, _, _ = clean_db.execute_query(
        "MATCH (n:Intruder) RETURN count(n) AS n", database_=database_name()
    )
    assert records[0]["n"] == 0


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_starts_from_an_empty_database(clean_db: Driver, turn: int) -> None:
    db = database_name()
    records, _, _ = clean_db.execute_query("MATCH (n) RETURN count(n) AS n", database_=db)
    assert records[0]["n"] == 0
    clean_db.execute_query("CREATE (:Leftover {turn: $turn})", turn=turn, database_=db)


def test_bad_port_setting_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCUITMAP_NEO4J_PORT", "seven")
    with pytest.raises(ValueError, match="CIRCUITMAP_NEO4J_PORT must be a TCP port number"):
        load_settings()


def test_missing_java_and_maven_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(DbError, match="java not found"):
        java_executable()
    with pytest.raises(DbError, match="mvn not found"):
        install_jars(tmp_path / "lib", progress=lambda _: None)


def _free_port() -> int:
    """A free port below Linux's ephemeral range, so no outgoing connection grabs it meanwhile."""
    for port in range(7800, 7900):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7800-7899 for the lifecycle test")


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


@pytest.fixture
def own_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings for a second local server (own home and port), so the shared one is untouched.

    It reuses the shared home's jars when they are there (Maven's own run is covered by the first
    start of the shared server) and skips the class-sharing archive, whose dump costs a stop.
    """
    shared_lib = server.Layout(load_settings().server_dir).lib
    home = tmp_path_factory.mktemp("cm-lifecycle")
    if jars_ready(shared_lib):
        lib = server.Layout(home / "neo4j").lib
        ignore = shutil.ignore_patterns("*.jsa")
        shutil.copytree(shared_lib, lib, copy_function=_link_or_copy, ignore=ignore)
    monkeypatch.setenv("CIRCUITMAP_HOME", str(home))
    monkeypatch.setenv("CIRCUITMAP_NEO4J_PORT", str(_free_port()))
    monkeypatch.setenv("CIRCUITMAP_NEO4J_CDS", "0")
    for name in ("NEO4J_URI", "NEO4J_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    yield settings
    server.stop(settings, timeout=20)


def test_start_refuses_a_port_taken_by_someone_else(own_server: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", own_server.port))
        squatter.listen()
        with pytest.raises(DbError, match=f"port {own_server.port} .* is taken"):
            server.start(own_server)


def test_server_lifecycle_start_stop_kill_restart(
    own_server: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        java_executable()
    except DbError as error:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(str(error))
    # A password that looks like an option must still become the initial one.
    monkeypatch.setenv("NEO4J_PASSWORD", "-looks-like-an-option")
    own_server = load_settings()
    first = server.start(own_server)
    assert first.running
    assert server.start(own_server).pid == first.pid  # idempotent: the same process
    with get_driver(own_server) as driver:
        driver.execute_query("CREATE (:Kept {step: 'before kill'})")

    os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.status(own_server).state != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.status(own_server).state == "stopped"

    second = server.start(own_server)  # over the stale pid file and the killed store's lock
    assert second.running and second.pid != first.pid
    with get_driver(own_server) as driver:
        records, _, _ = driver.execute_query("MATCH (n:Kept) RETURN n.step AS step")
    assert [r["step"] for r in records] == ["before kill"]

    assert server.stop(own_server)
    assert server.status(own_server).state == "stopped"
    assert not server.stop(own_server)
