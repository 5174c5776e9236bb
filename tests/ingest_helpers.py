"""Shared pieces of the ingest tests: corpora, synthetic computers, and reading graphs back."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from neo4j import Driver

from circuitmap.records import GraphRecord
from circuitmap.synthetic import synthetic_prompts
from db.connection import database_name
from ingest.compute import Computer, synthetic_computer

SMALL = {"n_features": 40, "n_edges": 600}


def write_corpus(path: Path, n: int, seed: int = 0) -> list[dict[str, object]]:
    rows = synthetic_prompts(n, seed)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def small_computer(**settings: object) -> Computer:
    return synthetic_computer(None, None, {**SMALL, **settings})


def logged_synthetic(model: str | None, transcoders: str | None, settings: dict) -> Computer:
    """A `--compute tests.ingest_helpers:logged_synthetic` factory for subprocess tests: appends
    each prompt it computes to $CM_TEST_COMPUTE_LOG and sleeps $CM_TEST_COMPUTE_DELAY seconds."""
    base = synthetic_computer(model, transcoders, settings)
    log = os.environ["CM_TEST_COMPUTE_LOG"]
    delay = float(os.environ.get("CM_TEST_COMPUTE_DELAY", "0"))

    def compute(text: str) -> GraphRecord:
        time.sleep(delay)
        with open(log, "a") as handle:  # one short O_APPEND write per line: no interleaving
            handle.write(f"{os.getpid()}\t{text}\n")
        return base.compute(text)

    return Computer(compute, base.spec)


# Deletes in batches (own transactions), relationships first, so a large leftover graph (a dense
# node's DETACH DELETE drags all its relationships into one batch) never needs a huge transaction.
_WIPE_STEPS = (
    "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS",
    "MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS",
)


def wipe_database(driver: Driver) -> None:
    """Every node and relationship deleted (constraints and indexes are kept)."""
    with driver.session(database=database_name()) as session:
        for step in _WIPE_STEPS:
            session.run(step).consume()


def query(driver: Driver, cypher: str, **params: object) -> list[dict]:
    records, _, _ = driver.execute_query(cypher, params, database_=database_name())
    return [r.data() for r in records]


def _rounded(rows: list[dict]) -> list[dict]:
    """Floats to 12 significant digits: sums added up in another order differ in the last bits."""
    return [
        {k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in row.items()}
        for row in rows
    ]


def snapshot(driver: Driver) -> dict:
    """What a write changes: counts by label and type, the catalog aggregates, `AGG_ATTR`."""
    return {
        "counts": query(driver, "MATCH (n) RETURN labels(n) AS l, count(*) AS n ORDER BY n, l[-1]"),
        "rels": query(driver, "MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n ORDER BY t"),
        "features": _rounded(
            query(
                driver,
                "MATCH (f:Feature) RETURN f.uid, f.n_graphs, f.n_instances, f.mean_influence,"
                " f.mean_activation, f.reached_logits, f.reached_logit_counts,"
                " f.top_reached_logits ORDER BY f.uid",
            )
        ),
        "pairs": _rounded(
            query(
                driver,
                "MATCH (a)-[r:AGG_ATTR]->(b) RETURN a.uid, b.uid, r.n_graphs, r.sum_weight"
                " ORDER BY a.uid, b.uid",
            )
        ),
    }


def stored_graph(driver: Driver, graph_uid: str) -> tuple[dict, dict]:
    """A stored graph as ({node_id: properties}, {(source id, target id): weight}); checks that
    `idx` numbers the nodes, that no edge is stored twice or leaves its graph, and that every
    node's `in_abs_weight` is the sum of |weight| over its incoming edges."""
    nodes = query(
        driver,
        "MATCH (:Graph {uid: $uid})-[:HAS_NODE]->(n) RETURN n {.*, labels: labels(n)} AS n",
        uid=graph_uid,
    )
    by_idx = {n["n"]["idx"]: n["n"] for n in nodes}
    assert sorted(by_idx) == list(range(len(nodes))), "node idx must number the graph's nodes"
    rows = query(
        driver,
        "MATCH (:Graph {uid: $uid})-[:HAS_NODE]->(b)<-[r:ATTR]-(a)"
        " RETURN a.node_id AS source, a.graph_uid AS graph, b.node_id AS target, r.weight AS w",
        uid=graph_uid,
    )
    edges, in_abs = {}, {}
    for row in rows:
        key = (row["source"], row["target"])
        assert row["graph"] == graph_uid, f"edge {key} leaves its graph"
        assert key not in edges, f"edge {key} stored twice"
        edges[key] = row["w"]
        in_abs[row["target"]] = in_abs.get(row["target"], 0.0) + abs(row["w"])
    for node in by_idx.values():
        want = in_abs.get(node["node_id"], 0.0)
        assert abs(node["in_abs_weight"] - want) <= 1e-9 * max(1.0, want), node["node_id"]
    return {n["node_id"]: n for n in by_idx.values()}, edges


def record_graph(record: GraphRecord) -> tuple[dict, dict]:
    """The same two dicts from an in-memory record (node properties as the writer stores them)."""
    nodes = {}
    for n in record.nodes:
        props = {
            "kind": n.kind,
            "layer": n.layer,
            "position": n.position,
            "token": n.token,
            "feature_index": n.feature_index,
            "activation": n.activation,
            "influence": n.influence,
            "probability": n.probability,
            "label": n.label,
        }
        nodes[n.node_id] = {k: v for k, v in props.items() if v is not None}
    ids = [n.node_id for n in record.nodes]
    edges = {
        (ids[s], ids[t]): float(w)
        for s, t, w in zip(
            record.edge_source.tolist(),
            record.edge_target.tolist(),
            record.edge_weight.tolist(),
            strict=True,
        )
    }
    return nodes, edges


def assert_same_graph(driver: Driver, graph_uid: str, record: GraphRecord) -> None:
    stored_nodes, stored_edges = stored_graph(driver, graph_uid)
    want_nodes, want_edges = record_graph(record)
    assert set(stored_nodes) == set(want_nodes)
    for node_id, want in want_nodes.items():
        got = stored_nodes[node_id]
        assert {k: got.get(k) for k in want} == want, node_id
        assert got["graph_uid"] == graph_uid
    assert stored_edges == want_edges


def assert_database_consistent(driver: Driver) -> None:
    """Every graph is whole, nothing is orphaned, and every graph is folded into the aggregates,
    once."""
    partial = query(
        driver,
        "MATCH (g:Graph) OPTIONAL MATCH (g)-[:HAS_NODE]->(n)"
        " WITH g, count(n) AS n_nodes, sum(COUNT { (n)<-[:ATTR]-() }) AS n_edges"
        " WHERE n_nodes <> g.n_nodes OR n_edges <> g.n_edges RETURN g.uid AS uid",
    )
    assert partial == []
    pending = query(driver, "MATCH (p:PendingAggregate) RETURN count(p) AS n")
    assert pending[0]["n"] == 0
    orphans = query(
        driver, "MATCH (n:Node) WHERE NOT EXISTS { (:Graph)-[:HAS_NODE]->(n) } RETURN count(n) AS n"
    )
    assert orphans[0]["n"] == 0
    wrong = query(
        driver,
        "MATCH (f:Feature) WHERE f.n_graphs IS NOT NULL"
        " WITH f, COUNT { MATCH (g:Graph)-[:HAS_NODE]->(:FeatureNode)-[:INSTANCE_OF]->(f)"
        " RETURN DISTINCT g } AS n WHERE n <> f.n_graphs RETURN f.uid AS uid",
    )
    assert wrong == []
