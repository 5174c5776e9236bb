"""Writes graphs into Neo4j per docs/schema.md: all-or-nothing, several graphs per transaction.

A transaction writes a batch of graphs (the worker batches what is ready; one graph alone is a
batch of one), so small graphs do not each pay a commit and a round trip per statement. Every
query has constant text and takes lists: nodes are created in one `UNWIND`, each carrying its
incoming edges as two list properties (docs/schema.md says why edges are not relationships).
What the graph brings to the catalog (its features' `INSTANCE_OF` links, its share of the corpus
aggregates) is stored beside it as a `(:PendingAggregate)` in the same transaction, and
ingest.aggregate folds it in later: a graph transaction touches no node that another graph's
does (but the shared `Model` and `Transcoder`, read), so writers on any number of machines never
wait on or deadlock with each other or with a fold. A graph that already exists complete is
skipped; a failed one is replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from neo4j import Driver, ManagedTransaction
from neo4j.exceptions import ConstraintError

from circuitmap.records import GraphRecord
from ingest.corpus import PromptRecord
from ingest.payload import (
    KIND_LABELS,
    BatchPayload,
    GraphPayload,
    batch_payload,
    failure_payload,
    graph_payload,
)
from ingest.spec import GraphSpec

STATUSES = """
UNWIND $uids AS uid
MATCH (g:Graph {uid: uid})
RETURN uid, g.status AS status
"""
DELETE_FAILED = """
UNWIND $uids AS uid
MATCH (g:Graph {uid: uid, status: 'failed'})
DETACH DELETE g
"""
CREATE_GRAPHS = """
UNWIND $rows AS row
MERGE (p:Prompt {uid: row.prompt.uid})
  ON CREATE SET p.text = row.prompt.text, p.tags = row.prompt.tags, p.answer = row.prompt.answer,
                p.metadata = row.prompt.metadata, p.corpus = row.prompt.corpus
MERGE (m:Model {uid: row.graph.model_uid}) ON CREATE SET m.name = row.graph.model_uid
MERGE (t:Transcoder {uid: row.graph.transcoder_uid})
  ON CREATE SET t.name = row.graph.transcoder_uid, t.model_uid = row.graph.model_uid
CREATE (g:Graph) SET g = row.graph, g.created_at = datetime()
CREATE (p)-[:HAS_GRAPH]->(g)
"""
CREATE_NODES = """
UNWIND $groups AS group
MATCH (g:Graph {uid: group.uid})
UNWIND group.nodes AS n
CREATE (x:Node) SET x = n, x.graph_uid = group.uid, x:$($labels[n.kind])
CREATE (g)-[:HAS_NODE]->(x)
RETURN count(x) AS n
"""
STORE_CONTRIBUTIONS = "UNWIND $rows AS row CREATE (p:PendingAggregate) SET p = row"
DELETE_CLAIMS = "UNWIND $uids AS uid MATCH (c:Claim {uid: uid}) DELETE c"


@dataclass
class WriteResult:
    graph_uid: str
    status: str  # "written", "failed" (a failure was recorded) or "skipped" (already complete)
    n_nodes: int = 0
    n_edges: int = 0
    seconds: float = 0.0


class GraphWriter:
    """Writes graphs and failures; one instance per process (it holds no connection itself)."""

    def __init__(self, driver: Driver, database: str | None = None, agg_pairs: int = 2000):
        self.driver = driver
        self.database = database
        self.agg_pairs = agg_pairs

    def payload(
        self, prompt: PromptRecord, graph: GraphRecord, source: str = "computed"
    ) -> GraphPayload:
        """`graph`'s parameter lists (ValueError names what is wrong with a bad graph)."""
        return graph_payload(prompt, graph, source, self.agg_pairs)

    def write_graph(
        self, prompt: PromptRecord, graph: GraphRecord, source: str = "computed"
    ) -> WriteResult:
        """Write `graph` for `prompt` unless a complete graph with its uid exists."""
        return self.write([self.payload(prompt, graph, source)])[0]

    def write_failure(
        self, prompt: PromptRecord, spec: GraphSpec, error: str, source: str = "computed"
    ) -> WriteResult:
        """Record that `prompt` failed with `error` (a later --retry-failed replaces it)."""
        return self.write([failure_payload(prompt, spec, error, source)])[0]

    def write(self, payloads: list[GraphPayload]) -> list[WriteResult]:
        """Write several graphs and failures in one transaction: small graphs cost a round trip
        and a commit each otherwise. Results come in the order of `payloads`."""
        start = time.perf_counter()
        try:
            with self._session() as session:
                statuses = session.execute_write(self._transaction, payloads)
        except ConstraintError:
            # Another writer created one of these graphs between our check and our CREATE.
            if len(payloads) > 1:
                return [result for p in payloads for result in self.write([p])]
            if self.status(payloads[0].graph_uid) != "complete":
                raise
            statuses = ["skipped"]
        seconds = (time.perf_counter() - start) / max(len(payloads), 1)
        results = []
        for p, status in zip(payloads, statuses, strict=True):
            written = status != "skipped"
            n_nodes, n_edges = (len(p.nodes), p.n_edges) if written else (0, 0)
            results.append(WriteResult(p.graph_uid, status, n_nodes, n_edges, seconds))
        return results

    def status(self, graph_uid: str) -> str | None:
        """'complete', 'failed' or None (no such graph)."""
        with self._session() as session:
            found = session.run(STATUSES, uids=[graph_uid]).single()
        return None if found is None else found["status"]

    def _session(self):
        return self.driver.session(database=self.database, notifications_min_severity="OFF")

    def _transaction(self, tx: ManagedTransaction, payloads: list[GraphPayload]) -> list[str]:
        uids = [p.graph_uid for p in payloads]
        existing = {r["uid"]: r["status"] for r in tx.run(STATUSES, uids=uids)}
        statuses, chosen = [], {}
        for p in payloads:
            found, failure = existing.get(p.graph_uid), p.graph["status"] == "failed"
            if p.graph_uid in chosen or found == "complete" or (found == "failed" and failure):
                statuses.append("skipped")
                continue
            chosen[p.graph_uid] = p
            statuses.append("failed" if failure else "written")
        replaced = [uid for uid in chosen if existing.get(uid) == "failed"]
        if replaced:
            tx.run(DELETE_FAILED, uids=replaced).consume()
        if chosen:
            batch = batch_payload(list(chosen.values()))
            tx.run(CREATE_GRAPHS, rows=batch.graphs).consume()
            self._write_body(tx, batch)
        tx.run(DELETE_CLAIMS, uids=uids).consume()
        return statuses

    def _write_body(self, tx: ManagedTransaction, p: BatchPayload) -> None:
        if not p.node_groups:
            return
        n = tx.run(CREATE_NODES, groups=p.node_groups, labels=KIND_LABELS).single(strict=True)["n"]
        check_count(n, p.n_nodes, "nodes")
        if p.contributions:
            tx.run(STORE_CONTRIBUTIONS, rows=p.contributions).consume()


def check_count(got: int, expected: int, what: str) -> None:
    """A count mismatch would mean a silently partial write: fail the transaction instead."""
    if got != expected:
        raise RuntimeError(f"wrote {got} {what}, expected {expected}; transaction rolled back")
