"""Read the history of dashboard intervention runs (ingest.intervention_runs writes it)."""

from __future__ import annotations

from dataclasses import fields

from neo4j import Record

from db.connection import Neo4jHandle
from ingest.intervention_runs import InterventionRunRecord

MAX_RUNS = 200

# By the stored graph uid rather than the ON_GRAPH link: a graph computed again (written anew)
# keeps its history.
GRAPH_RUNS = """
MATCH (r:InterventionRun {graph_uid: $graph_uid})
RETURN r AS run
ORDER BY r.created_at DESC, r.uid
LIMIT $limit
"""
ONE_RUN = "MATCH (r:InterventionRun {uid: $uid}) RETURN r AS run"

_FIELDS = [f.name for f in fields(InterventionRunRecord)]


def graph_runs(
    handle: Neo4jHandle, graph_uid: str, limit: int = MAX_RUNS
) -> list[InterventionRunRecord]:
    """The runs on one graph, newest first."""
    records = handle.read(GRAPH_RUNS, {"graph_uid": graph_uid, "limit": limit})
    return [_from_record(r) for r in records]


def get_run(handle: Neo4jHandle, uid: str) -> InterventionRunRecord | None:
    records = handle.read(ONE_RUN, {"uid": uid})
    return _from_record(records[0]) if records else None


def _from_record(record: Record) -> InterventionRunRecord:
    props = dict(record["run"])
    values = {name: props.get(name) for name in _FIELDS}
    values["top_before"] = list(values["top_before"] or [])
    values["top_after"] = list(values["top_after"] or [])
    if values["created_at"] is not None:
        values["created_at"] = values["created_at"].to_native()
    return InterventionRunRecord(**values)
