"""Writes graphs into Neo4j per docs/schema.md: all-or-nothing, several graphs per transaction.

A transaction writes a batch of graphs (the worker batches what is ready; one graph alone is a
batch of one), so small graphs do not each pay a commit and ten round trips. Every query has
constant text and takes lists: nodes are created in one `UNWIND`, their element ids
come back, and edges are then created in batches that look the few hundred nodes up once per batch
and index into them (no per-edge index seek). Catalog features are MERGEd (sorted by uid so
concurrent writers lock them in one order) and their corpus aggregates and the `AGG_ATTR` summaries
are updated in the same transaction, so an aggregate never counts a graph twice or counts a graph
that is not there. A graph that already exists complete is skipped; a failed one is replaced.
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
RETURN collect(elementId(x)) AS ids
"""
CREATE_EDGES = """
UNWIND $ids AS id MATCH (x) WHERE elementId(x) = id
WITH collect(x) AS xs
UNWIND range(0, size($w) - 1) AS i
WITH xs[$s[i]] AS a, xs[$t[i]] AS b, $w[i] AS w
CREATE (a)-[:ATTR {weight: w}]->(b)
RETURN count(*) AS n
"""
MERGE_FEATURES = """
UNWIND $features AS f
MERGE (c:Feature {uid: f.uid})
  ON CREATE SET c.transcoder_uid = f.transcoder, c.layer = f.layer, c.index = f.index,
                c.label = CASE WHEN f.label = '' THEN null ELSE f.label END, c.auto_label = c.label
RETURN elementId(c) AS id
"""
# Exclusive locks on the graph's existing catalog features, in uid order, before anything else
# touches them: the MERGE below would otherwise take shared locks and upgrade them, and two
# writers upgrading the same feature deadlock.
LOCK_FEATURES = """
UNWIND $uids AS uid
MATCH (c:Feature {uid: uid})
SET c.n_graphs = coalesce(c.n_graphs, 0)
"""
# The same, plus the per-feature corpus aggregates. The SET locks each feature before its
# reached-logit lists are read, so the lists written back below lose no concurrent update.
MERGE_FEATURES_COUNTING = """
UNWIND $features AS f
MERGE (c:Feature {uid: f.uid})
  ON CREATE SET c.transcoder_uid = f.transcoder, c.layer = f.layer, c.index = f.index,
                c.label = CASE WHEN f.label = '' THEN null ELSE f.label END, c.auto_label = c.label
SET c.n_graphs = coalesce(c.n_graphs, 0) + f.n_graphs,
    c.n_instances = coalesce(c.n_instances, 0) + f.n_instances,
    c.sum_influence = coalesce(c.sum_influence, 0.0) + f.influence,
    c.sum_activation = coalesce(c.sum_activation, 0.0) + f.activation
SET c.mean_influence = c.sum_influence / c.n_graphs,
    c.mean_activation = c.sum_activation / c.n_graphs
RETURN elementId(c) AS id, c.reached_logits AS tokens, c.reached_logit_counts AS counts
"""
SET_REACHED = """
UNWIND $rows AS r
MATCH (c:Feature) WHERE elementId(c) = r.id
SET c.reached_logits = r.tokens, c.reached_logit_counts = r.counts, c.top_reached_logits = r.top
"""
CREATE_INSTANCES = """
UNWIND $xids AS id MATCH (x) WHERE elementId(x) = id
WITH collect(x) AS xs
UNWIND $fids AS id MATCH (f) WHERE elementId(f) = id
WITH xs, collect(f) AS fs
UNWIND range(0, size($node) - 1) AS i
WITH xs[$node[i]] AS x, fs[$feature[i]] AS f
CREATE (x)-[:INSTANCE_OF]->(f)
RETURN count(*) AS n
"""
MERGE_PAIRS = """
UNWIND $fids AS id MATCH (f) WHERE elementId(f) = id
WITH collect(f) AS fs
UNWIND range(0, size($w) - 1) AS i
WITH fs[$s[i]] AS a, fs[$t[i]] AS b, $w[i] AS w, $m[i] AS m, $g[i] AS n
MERGE (a)-[r:AGG_ATTR]->(b)
  ON CREATE SET r.n_graphs = n, r.sum_weight = w, r.max_abs_weight = m
  ON MATCH SET r.n_graphs = r.n_graphs + n, r.sum_weight = r.sum_weight + w,
               r.max_abs_weight = CASE WHEN m > r.max_abs_weight THEN m ELSE r.max_abs_weight END
SET r.mean_weight = r.sum_weight / r.n_graphs
RETURN count(*) AS n
"""
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
        driver: Driver,
        database: str | None = None,
        edge_batch: int = 20_000,
        aggregates: bool = True,
        agg_pairs: int = 2000,
    ):
        self.driver = driver
        self.database = database
        self.edge_batch = edge_batch
        self.aggregates = aggregates
        self.agg_pairs = agg_pairs if aggregates else 0

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
        ids = tx.run(CREATE_NODES, groups=p.node_groups, labels=KIND_LABELS).single(strict=True)[
            "ids"
        ]
        _check(len(ids), p.n_nodes, "nodes")
        for lo in range(0, p.n_edges, self.edge_batch):
            hi = lo + self.edge_batch
            n = tx.run(
                CREATE_EDGES,
                ids=ids,
                s=p.edge_source[lo:hi],
                t=p.edge_target[lo:hi],
                w=p.edge_weight[lo:hi],
            ).single(strict=True)["n"]
            _check(n, len(p.edge_weight[lo:hi]), "edges")
        if not p.features:
            return
        if self.aggregates:
            tx.run(LOCK_FEATURES, uids=[f["uid"] for f in p.features]).consume()
        query = MERGE_FEATURES_COUNTING if self.aggregates else MERGE_FEATURES
        rows = list(tx.run(query, features=p.features))
        _check(len(rows), len(p.features), "catalog features")
        fids = [row["id"] for row in rows]
        n = tx.run(
            CREATE_INSTANCES,
            xids=ids,
            fids=fids,
            node=p.instance_node,
            feature=p.instance_feature,
        ).single(strict=True)["n"]
        _check(n, len(p.instance_node), "feature instances")
        if not self.aggregates:
            return
        reached = [_reached_row(row, f["reached"]) for row, f in zip(rows, p.features, strict=True)]
        tx.run(SET_REACHED, rows=[r for r in reached if r is not None]).consume()
        for lo in range(0, len(p.pair_sum), self.edge_batch):
            hi = lo + self.edge_batch
            n = tx.run(
                MERGE_PAIRS,
                fids=fids,
                s=p.pair_source[lo:hi],
                t=p.pair_target[lo:hi],
                w=p.pair_sum[lo:hi],
                m=p.pair_max_abs[lo:hi],
                g=p.pair_graphs[lo:hi],
            ).single(strict=True)["n"]
            _check(n, len(p.pair_sum[lo:hi]), "aggregate edges")


def _reached_row(row, new: list[str], top: int = 5) -> dict[str, object] | None:
    """Add one graph's reached logits to a feature's token counts; None when it reached none."""
    if not new:
        return None
    counts = dict(zip(row["tokens"] or [], row["counts"] or [], strict=True))
    for token in new:
        counts[token] = counts.get(token, 0) + 1
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return {
        "id": row["id"],
        "tokens": list(counts),
        "counts": list(counts.values()),
        "top": ranked[:top],
    }


def _check(got: int, expected: int, what: str) -> None:
    """A count mismatch would mean a silently partial graph: fail the transaction instead."""
    if got != expected:
        raise RuntimeError(f"wrote {got} {what}, expected {expected}; transaction rolled back")
