"""Reading a stored graph back: one way to read edges (graph_edge_lists), used by every reader."""

from __future__ import annotations

import numpy as np
import pytest

from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from queries import graph_reader
from queries.runner import run_query
from tests.planted import store
from tests.query_helpers import handle_of


@pytest.fixture
def stored(clean_db):
    from db.schema import ensure_schema

    ensure_schema(handle_of(clean_db))
    record = synthetic_graph("the capital of texas is", SyntheticConfig(n_features=60, n_edges=900))
    return clean_db, record, store(clean_db, record)


def edge_set(ids, source, target, weight) -> set[tuple[str, str, float]]:
    return {
        (ids[s] if ids else s, ids[t] if ids else t, round(float(w), 5))
        for s, t, w in zip(source, target, weight, strict=True)
    }


def test_read_graph_and_the_dashboard_read_edges_in_one_row(stored, monkeypatch):
    driver, record, uid = stored
    expected = edge_set(
        [n.node_id for n in record.nodes],
        record.edge_source,
        record.edge_target,
        record.edge_weight,
    )
    names: list[str] = []
    run_query = graph_reader.run_query
    monkeypatch.setattr(
        graph_reader,
        "run_query",
        lambda d, name, *a, **k: names.append(name) or run_query(d, name, *a, **k),
    )
    again = graph_reader.read_graph(handle_of(driver), uid)
    assert "graph_edges" not in names and "graph_edge_lists" in names
    got = edge_set(
        [n.node_id for n in again.nodes], again.edge_source, again.edge_target, again.edge_weight
    )
    assert got == expected and len(expected) == record.n_edges
    edges = graph_reader.read_edges(handle_of(driver), uid)
    assert edge_set(None, edges["source"], edges["target"], edges["weight"]) == expected
    assert graph_reader.read_edges(handle_of(driver), "no-such-graph").empty

    import app.data.graphs

    assert app.data.graphs.read_edges is graph_reader.read_edges  # the dashboard's loader
    assert np.array_equal(np.sort(again.edge_weight), np.sort(record.edge_weight))


def test_graph_edges_are_the_records_edges_with_their_shares(stored):
    driver, record, uid = stored
    ids = [n.node_id for n in record.nodes]
    weight = record.edge_weight.astype(np.float64)
    into = np.zeros(len(ids))
    np.add.at(into, record.edge_target, np.abs(weight))
    expected = {
        (ids[s], ids[t]): (w, abs(w) / into[t])
        for s, t, w in zip(record.edge_source, record.edge_target, weight, strict=True)
    }
    edges = run_query(handle_of(driver), "graph_edges", {"graph": uid}, row_cap=0).frame
    assert len(edges) == record.n_edges
    got = {(r.source, r.target): (r.weight, r.share) for r in edges.itertuples(index=False)}
    assert got.keys() == expected.keys()
    for key, (w, share) in expected.items():
        assert got[key] == pytest.approx((w, share), rel=1e-6), key
    assert edges["weight"].abs().is_monotonic_decreasing
    strong = run_query(
        handle_of(driver), "graph_edges", {"graph": uid, "min_abs_weight": 0.5}
    ).frame
    assert len(strong) == int((np.abs(weight) >= 0.5).sum()) > 0
    assert strong["share"].tolist() == pytest.approx(
        [expected[s, t][1] for s, t in zip(strong["source"], strong["target"], strict=True)]
    )
