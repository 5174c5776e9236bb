"""Writes graphs into Neo4j per docs/schema.md: all-or-nothing, several graphs per transaction.

A transaction writes a batch of graphs (the worker batches what is ready; one graph alone is a
batch of one), so small graphs do not each pay a commit and a round trip per statement. Every
query has constant text and takes lists: a graph's nodes are created in one `UNWIND`, collected
in idx order, and its edges become `ATTR` relationships between `nodes[source]` and
`nodes[target]` of that list, with no index lookup per edge. Edges past the first statement's
share of a large graph go in further statements of the same transaction. What the graph brings to
the catalog (its features' `INSTANCE_OF` links, its share of the corpus aggregates) is stored
beside it as a `(:PendingAggregate)` in the same transaction, and ingest.aggregate folds it in
later: a graph transaction touches no node that another graph's does (but the shared `Model` and
`Transcoder`, read), so writers on any number of machines never wait on or deadlock with each
other or with a fold. A graph that already exists complete is skipped; a failed one is replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from neo4j import ManagedTransaction
from neo4j.exceptions import ConstraintError

from circuitmap.records import GraphRecord
from db.connection import Neo4jHandle
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
# A body's edges between the nodes `xs` of its graph, listed by idx: no index lookup per edge.
_CREATE_EDGES = """
CALL (xs, body) {
  UNWIND range(0, size(body.weight) - 1) AS i
  WITH xs[body.source[i]] AS a, xs[body.target[i]] AS b, body.weight[i] AS w
  CREATE (a)-[:ATTR {weight: w}]->(b)
  RETURN count(*) AS edges
}
"""
# Nodes come in idx order; collect keeps it, so xs[i] is the node with idx i.
CREATE_BODIES = (
    """
UNWIND $bodies AS body
MATCH (g:Graph {uid: body.uid})
CALL (g, body) {
  UNWIND body.nodes AS n
  CREATE (x:Node) SET x = n, x.graph_uid = body.uid, x:$($labels[n.kind])
  CREATE (g)-[:HAS_NODE]->(x)
  RETURN collect(x) AS xs
}
"""
    + _CREATE_EDGES
    + "RETURN sum(size(xs)) AS nodes, sum(edges) AS edges"
)
# More edges of graphs whose nodes this transaction wrote already.
CREATE_MORE_EDGES = (
    """
UNWIND $bodies AS body
CALL (body) {
  MATCH (:Graph {uid: body.uid})-[:HAS_NODE]->(x)
  WITH x ORDER BY x.idx
  RETURN collect(x) AS xs
}
"""
    + _CREATE_EDGES
    + "RETURN sum(edges) AS edges"
)
EDGES_PER_STATEMENT = 100_000
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

    def __init__(
        self,
        handle: Neo4jHandle,
        agg_pairs: int = 2000,
        edges_per_statement: int = EDGES_PER_STATEMENT,
    ):
        self.handle = handle
        self.agg_pairs = agg_pairs
        self.edges_per_statement = edges_per_statement

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
            statuses = self.handle.write_transaction(self._transaction, payloads)
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
        found = self.handle.read(STATUSES, {"uids": [graph_uid]})
        return found[0]["status"] if found else None

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
        if not p.bodies:
            return
        first, rest = split_edges(p.bodies, self.edges_per_statement)
        row = tx.run(CREATE_BODIES, bodies=first, labels=KIND_LABELS).single(strict=True)
        check_count(row["nodes"], p.n_nodes, "nodes")
        edges = row["edges"]
        for bodies in rest:
            edges += tx.run(CREATE_MORE_EDGES, bodies=bodies).single(strict=True)["edges"]
        check_count(edges, p.n_edges, "edges")
        if p.contributions:
            tx.run(STORE_CONTRIBUTIONS, rows=p.contributions).consume()


def split_edges(
    bodies: list[dict[str, object]], per_statement: int
) -> tuple[list[dict[str, object]], list[list[dict[str, object]]]]:
    """Every body (its nodes) with the first `per_statement` edges in all, then the remaining
    edges in statements of at most that many: a 350k-edge graph's parameters and intermediate
    rows stay a small part of the server's heap."""
    first: list[dict[str, object]] = []
    leftovers: list[tuple[dict[str, object], int]] = []  # (body, first edge not yet sent)
    room = per_statement
    for body in bodies:
        taken = min(len(body["weight"]), room)  # type: ignore[arg-type]
        first.append({**body, **_edge_slice(body, 0, taken)})
        room -= taken
        if taken < len(body["weight"]):  # type: ignore[arg-type]
            leftovers.append((body, taken))
    rest: list[list[dict[str, object]]] = []
    room = 0
    for body, lo in leftovers:
        n = len(body["weight"])  # type: ignore[arg-type]
        while lo < n:
            if room == 0:
                rest.append([])
                room = per_statement
            hi = min(n, lo + room)
            rest[-1].append({"uid": body["uid"], **_edge_slice(body, lo, hi)})
            room -= hi - lo
            lo = hi
    return first, rest


def _edge_slice(body: dict[str, object], lo: int, hi: int) -> dict[str, list]:
    return {key: body[key][lo:hi] for key in ("source", "target", "weight")}  # type: ignore[index]


def check_count(got: int, expected: int, what: str) -> None:
    """A count mismatch would mean a silently partial write: fail the transaction instead."""
    if got != expected:
        raise RuntimeError(f"wrote {got} {what}, expected {expected}; transaction rolled back")
