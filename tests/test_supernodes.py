"""Supernodes defined by saved queries: membership, refresh after new graphs, views, export."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from circuitmap.graph_json import graph_from_json
from queries import saved, supernodes
from queries.runner import run_query
from tests.planted import CAPITAL_INDEX, STATE_INDEX, feature_uid, planted_graph, store
from tests.query_helpers import handle_of

TEXAS_STATE = feature_uid(0, STATE_INDEX["texas"])
CALIFORNIA_STATE = feature_uid(0, STATE_INDEX["california"])
TEXAS_CAPITAL = feature_uid(2, CAPITAL_INDEX["texas"])
# The state features are the ones a city token drives strongly (random edges stay far below 2).
STATE_FEATURES = """
MATCH (t:TokenNode)-[r:ATTR]->(n:FeatureNode)
  WHERE t.token IN $cities AND abs(r.weight) >= $min_weight
RETURN DISTINCT n.feature_uid AS feature_uid
"""
CITIES = ["dallas", "houston", "oakland"]


@pytest.fixture
def texas(clean_db):
    from db.schema import ensure_schema

    ensure_schema(handle_of(clean_db))
    uids = {city: store(clean_db, planted_graph(city)) for city in ("dallas", "houston")}
    saved.save_query(
        handle_of(clean_db),
        "state-features",
        STATE_FEATURES,
        "city -> state",
        {"cities": CITIES, "min_weight": 2.0},
    )
    return clean_db, uids


def hop_sums(graph, sources: list[int], targets: list[int]) -> tuple[float, float]:
    """(summed weight of the edges sources -> targets, sum of |w| into targets from outside them):
    a hop of supernode_paths, from the record's edge arrays."""
    weight = graph.edge_weight.astype(np.float64)
    into = np.isin(graph.edge_target, targets)
    between = into & np.isin(graph.edge_source, sources)
    from_outside = into & ~np.isin(graph.edge_source, targets)
    return weight[between].sum(), np.abs(weight[from_outside]).sum()


def groups(driver, graph_uid):
    view = supernodes.collapsed_graph(handle_of(driver), graph_uid)
    return view, set(view.nodes.loc[view.nodes["kind"] == "supernode", "group"])


def test_query_defined_supernode_covers_graphs_ingested_after_it(texas):
    driver, uids = texas
    node = supernodes.create_supernode(
        handle_of(driver),
        "state",
        description="the intermediate state",
        query_name="state-features",
    )
    assert node.members == [TEXAS_STATE]
    for uid in uids.values():
        view, found = groups(driver, uid)
        assert found == {"state"}
        edges = view.edges.set_index(["source", "target"])
        assert edges.loc[("state", "2_201_8"), "weight"] == pytest.approx(3.0)
    oakland = store(driver, planted_graph("oakland"))
    assert groups(driver, oakland)[1] == set()  # not yet: membership is as of the last refresh
    results = supernodes.refresh_all_supernodes(handle_of(driver))
    assert [(r.name, r.added, r.removed) for r in results] == [("state", [CALIFORNIA_STATE], [])]
    view, found = groups(driver, oakland)
    assert found == {"state"}
    assert view.nodes.set_index("group").loc["state", "node_ids"] == ["0_102_7"]
    history = supernodes.history(handle_of(driver), "state")
    assert [r.members for r in history] == [[TEXAS_STATE], sorted([TEXAS_STATE, CALIFORNIA_STATE])]
    assert not supernodes.refresh_supernode(handle_of(driver), "state").changed
    assert (
        len(supernodes.history(handle_of(driver), "state")) == 2
    )  # an unchanged refresh adds no revision


def test_collapsed_edges_sum_member_edges(texas):
    driver, uids = texas
    supernodes.create_supernode(handle_of(driver), "chain", members=[TEXAS_STATE, TEXAS_CAPITAL])
    view = supernodes.collapsed_graph(handle_of(driver), uids["dallas"])
    edges = view.edges.set_index(["source", "target"])
    assert ("chain", "chain") not in edges.index  # the internal edge state -> capital is merged
    graph = planted_graph("dallas")
    ids = [n.node_id for n in graph.nodes]
    expected = sum(
        float(w)
        for s, t, w in zip(graph.edge_source, graph.edge_target, graph.edge_weight, strict=True)
        if ids[s] == "E_625_7" and ids[t] in ("0_101_7", "2_201_8")
    )
    assert edges.loc[("E_625_7", "chain"), "weight"] == pytest.approx(expected, rel=1e-5)
    into_logit = view.edges[view.edges["target"] == "4_660_8"]
    assert into_logit["share"].sum() == pytest.approx(1.0)
    nodes = view.nodes.set_index("group")
    assert nodes.loc["chain", "n_members"] == 2 and nodes.loc["chain", "kind"] == "supernode"


def test_collapsed_graph_equals_the_records_edges_summed_by_group(texas):
    driver, uids = texas
    graph = planted_graph("dallas")
    distractors = sorted(
        {feature_uid(n.layer, n.feature_index) for n in graph.nodes if n.label == "distractor"}
    )[:6]
    members = {"chain": {TEXAS_STATE, TEXAS_CAPITAL}, "rest": {TEXAS_STATE, *distractors}}
    for name, uids_ in members.items():
        supernodes.create_supernode(handle_of(driver), name, members=sorted(uids_))

    def group(node) -> tuple[str, str]:  # a feature in both supernodes goes to the first by name
        uid = feature_uid(node.layer, node.feature_index) if node.kind == "feature" else None
        name = next((s for s in sorted(members) if uid in members[s]), None)
        return (name, "supernode") if name else (node.node_id, node.kind)

    summed: dict[tuple, list[float]] = {}
    for s, t, w in zip(graph.edge_source, graph.edge_target, graph.edge_weight, strict=True):
        a, b = group(graph.nodes[s]), group(graph.nodes[t])
        if a != b:
            summed.setdefault((a, b), []).append(float(w))
    into: dict[str, float] = {}
    for (_, b), ws in summed.items():
        into[b[0]] = into.get(b[0], 0.0) + abs(sum(ws))
    view = supernodes.collapsed_graph(handle_of(driver), uids["dallas"])
    got = {(r.source, r.target): r for r in view.edges.itertuples(index=False)}
    assert got.keys() == {(a[0], b[0]) for a, b in summed}
    for (a, b), ws in summed.items():
        row = got[a[0], b[0]]
        assert (row.source_kind, row.target_kind, row.n_edges) == (a[1], b[1], len(ws))
        assert (row.weight, row.share) == pytest.approx((sum(ws), abs(sum(ws)) / into[b[0]]))


def test_supernode_level_paths_across_graphs(texas):
    driver, uids = texas
    supernodes.create_supernode(handle_of(driver), "state", query_name="state-features")
    supernodes.create_supernode(handle_of(driver), "say-capital", members=[TEXAS_CAPITAL])
    found = run_query(
        handle_of(driver), "supernode_paths", {"supernodes": ["state", "say-capital"]}
    ).frame
    assert set(found["graph_uid"]) == set(uids.values())
    row = found.set_index("graph_uid").loc[uids["dallas"]]
    assert row["hop_weights"][1:] == pytest.approx([3.0, 5.0])
    assert row["members_present"] == [1, 1]
    params = {"supernodes": ["state", "say-capital"], "token": "dallas", "logit": "austin"}
    only_dallas = run_query(handle_of(driver), "supernode_paths", params).frame
    assert set(only_dallas["graph_uid"]) == {uids["dallas"]}
    no_direct_edge = run_query(
        handle_of(driver), "supernode_paths", {**params, "supernodes": ["state"]}
    )
    assert no_direct_edge.frame.empty  # state features reach the logit only through say-capital


def layer_features(layer: int) -> list[str]:
    """The catalog features of the dallas graph's feature nodes in one layer."""
    nodes = planted_graph("dallas").nodes
    return sorted({feature_uid(n.layer, n.feature_index) for n in nodes if n.kind == "feature"
                   and n.layer == layer})  # fmt: skip


@pytest.mark.parametrize(
    "member_sets",
    [
        [[TEXAS_STATE], [TEXAS_CAPITAL]],
        [[TEXAS_STATE, TEXAS_CAPITAL]],  # an edge inside the group, left out of its input
        [layer_features(0), layer_features(1) + layer_features(2)],
    ],
)
def test_supernode_path_hops_are_the_records_edges_summed(texas, member_sets):
    driver, uids = texas
    names = [f"s{k}" for k in range(len(member_sets))]
    for name, members in zip(names, member_sets, strict=True):
        supernodes.create_supernode(handle_of(driver), name, members=members)
    found = run_query(
        handle_of(driver), "supernode_paths", {"supernodes": names, "token": "dallas"}
    ).frame
    row = found.set_index("graph_uid").loc[uids["dallas"]]
    graph = planted_graph("dallas")
    uid_of = [feature_uid(n.layer, n.feature_index) if n.kind == "feature" else None
              for n in graph.nodes]  # fmt: skip
    groups = [
        [i for i, n in enumerate(graph.nodes) if n.kind == "token" and n.token == "dallas"],
        *([i for i, uid in enumerate(uid_of) if uid in members] for members in member_sets),
        [i for i, n in enumerate(graph.nodes) if n.kind == "logit" and n.token == "austin"],
    ]
    hops = [hop_sums(graph, a, b) for a, b in itertools.pairwise(groups)]
    assert row["members_present"] == [len(g) for g in groups[1:-1]]
    assert row["hop_weights"] == pytest.approx([weight for weight, _ in hops])
    assert row["hop_shares"] == pytest.approx([abs(weight) / total for weight, total in hops])


def test_export_puts_supernodes_in_qparams(texas):
    driver, uids = texas
    supernodes.create_supernode(handle_of(driver), "state", query_name="state-features")
    document = supernodes.export_graph_json(handle_of(driver), uids["dallas"])
    assert document["qParams"]["supernodes"] == [["state", "0_101_7"]]
    ids = {n["node_id"] for n in document["nodes"]}
    assert "0_101_7" in ids and len(document["links"]) == planted_graph("dallas").n_edges
    back = graph_from_json(document)
    assert back.metadata["qParams"]["supernodes"] == [["state", "0_101_7"]]
    assert back.prompt == planted_graph("dallas").prompt


def test_definition_errors_and_deletion(texas):
    driver, _ = texas
    with pytest.raises(ValueError, match="either"):
        supernodes.create_supernode(handle_of(driver), "x")
    with pytest.raises(ValueError, match="unknown feature"):
        supernodes.create_supernode(handle_of(driver), "x", members=["planted-clt/9/9"])
    with pytest.raises(LookupError, match="no saved query"):
        supernodes.create_supernode(handle_of(driver), "x", query_name="missing")
    saved.save_query(
        handle_of(driver), "two-columns", "MATCH (f:Feature) RETURN f.uid AS a, f.layer AS b"
    )
    with pytest.raises(ValueError, match="feature_uid"):
        supernodes.create_supernode(handle_of(driver), "x", query_name="two-columns")
    supernodes.create_supernode(handle_of(driver), "state", query_name="state-features")
    with pytest.raises(ValueError, match="exists"):
        supernodes.create_supernode(handle_of(driver), "state", members=[TEXAS_STATE])
    with pytest.raises(ValueError, match="defines supernode"):
        saved.delete_query(handle_of(driver), "state-features")
    supernodes.delete_supernode(handle_of(driver), "state")
    assert supernodes.get_supernode(handle_of(driver), "state") is None
    records, _, _ = driver.execute_query("MATCH (r:SupernodeRevision) RETURN count(r) AS n")
    assert records[0]["n"] == 0
    saved.delete_query(handle_of(driver), "state-features")
