"""`--ray`: computations as Ray tasks, here on a local Ray instance."""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from db.connection import Neo4jHandle, database_name
from db.schema import ensure_schema
from ingest.compute import ComputeRecipe, RayExecutor
from ingest.corpus import Corpus
from ingest.worker import Worker
from tests.ingest_helpers import SMALL, assert_database_consistent, write_corpus

ray = pytest.importorskip("ray", reason="the optional 'ray' extra is not installed")


def test_ray_actors_compute_and_the_worker_writes(clean_db: Driver, tmp_path: Path) -> None:
    ensure_schema(Neo4jHandle(clean_db, database_name()))
    write_corpus(tmp_path / "corpus.jsonl", 6)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor(ComputeRecipe("synthetic", settings=SMALL), "local", 2)
        summary = Worker(Neo4jHandle(clean_db, database_name()), executor).run(
            Corpus(tmp_path / "corpus.jsonl")
        )
        executor.close()
    finally:
        ray.shutdown()
    assert (summary.written, summary.failed) == (6, 0)
    assert_database_consistent(clean_db)
