"""Shared fixtures: one real Neo4j per test session, and a clean database for every test.

Which Neo4j: NEO4J_URI if set; else a throw-away `neo4j:5.26-community` container when a Docker
engine answers; else the project's own local server (`circuitmap db start`), started if needed and
left running for the next run (.ci/run and `make test-db-stop` stop it). Under CI=true a
database that cannot be had fails the run; elsewhere the tests that need one are skipped with
the reason shown in the summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver

from circuitmap.demo.artifacts import CHECKOUT_TEST_HOME, demo_root
from circuitmap.demo.stages import DemoBuild, build_demo, find_built_demo
from circuitmap.pipeline import GraphBuilder
from db import server
from db.config import load_settings
from db.connection import get_driver
from db.jars import DbError
from tests.demo_graphs import DemoSample, compute_sample
from tests.ingest_helpers import wipe_database

# Tests wipe the database they use: unless a home was chosen, they get their own local server
# (same default as the Makefile's `test` target), never the one holding `make demo`'s data.
if not os.environ.get("CIRCUITMAP_HOME") and not os.environ.get("NEO4J_URI"):
    os.environ["CIRCUITMAP_HOME"] = str(CHECKOUT_TEST_HOME)
    os.environ["CIRCUITMAP_NEO4J_PORT"] = "7688"

NEO4J_IMAGE = "neo4j:5.26-community"


def _no_database(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"no Neo4j for the tests (CI=true): {reason}", pytrace=False)
    pytest.skip(f"no Neo4j: {reason}")


def _docker_answers() -> bool:
    """A quick yes/no: never waits on a missing engine (no socket, no DOCKER_HOST: no)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # any failure to reach the engine means "no Docker" here
        return False


@pytest.fixture(scope="session")
def neo4j_driver() -> Iterator[Driver]:
    """A driver for the session's Neo4j; the environment points at it too (for code under test)."""
    settings = load_settings()
    if not settings.external and _docker_answers():
        from testcontainers.community.neo4j import Neo4jContainer

        container = Neo4jContainer(NEO4J_IMAGE, password="circuitmap-test")
        with container, pytest.MonkeyPatch.context() as env:
            env.setenv("NEO4J_URI", container.get_connection_url())
            env.setenv("NEO4J_USER", container.username)
            env.setenv("NEO4J_PASSWORD", container.password)
            with get_driver() as driver:
                yield driver
        return
    if not settings.external:
        try:
            server.start(settings)
        except DbError as error:
            _no_database(str(error))
    try:
        driver = get_driver(settings)
        driver.verify_connectivity()
    except Exception as error:  # unreachable server, bad credentials: say which and stop here
        _no_database(f"{settings.uri or settings.local_uri}: {error}")
    with driver:
        yield driver


@pytest.fixture
def clean_db(neo4j_driver: Driver) -> Driver:
    """The session's driver over an empty database (constraints and indexes are kept)."""
    wipe_database(neo4j_driver)
    return neo4j_driver


# ---- the demo world (trained once, cached; see circuitmap/demo/stages.py) -------------------


@pytest.fixture(scope="session")
def demo() -> DemoBuild:
    """The demo artefacts wherever they are built (the test home, ~/.circuitmap/demo where
    `make demo` puts them: read in place, the user's database untouched), else built once into
    the test home, reusing any stage built elsewhere (all of them: about 10 minutes on one core)."""
    found = find_built_demo()
    if found is not None:
        return found
    return build_demo(root=demo_root(), threads=1, progress=False, log=lambda _: None)


@pytest.fixture(scope="session")
def builder(demo: DemoBuild) -> GraphBuilder:
    return GraphBuilder.from_paths(str(demo.model_dir), str(demo.clt_dir))


@pytest.fixture(scope="session")
def demo_sample(demo: DemoBuild, builder: GraphBuilder) -> DemoSample:
    """Graphs of a fixed sample of demo prompts (tests/demo_graphs.py writes them to Neo4j)."""
    return compute_sample(demo, builder)
