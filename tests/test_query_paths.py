"""Library queries on graphs with a planted chain: paths, chains, answer features, diffs, stats."""

from __future__ import annotations

import pandas as pd
import pytest

from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from queries.runner import run_query
from tests.planted import (
    CAPITAL_INDEX,
    STATE_INDEX,
    feature_uid,
    planted_graph,
    reference_answer_features,
    reference_chains,
    reference_paths,
    store,
)
from tests.query_helpers import handle_of

TEXAS_STATE = feature_uid(0, STATE_INDEX["texas"])
TEXAS_CAPITAL = feature_uid(2, CAPITAL_INDEX["texas"])
CALIFORNIA_STATE = feature_uid(0, STATE_INDEX["california"])


@pytest.fixture
def corpus(clean_db):
    """Three two-hop graphs: dallas and houston (texas), oakland (california, tagged apart too)."""
    from db.schema import ensure_schema

    ensure_schema(handle_of(clean_db))
    graphs = {city: planted_graph(city) for city in ("dallas", "houston", "oakland")}
    uids = {city: store(clean_db, g) for city, g in graphs.items() if city != "oakland"}
    uids["oakland"] = store(clean_db, graphs["oakland"], ("two-hop", "california"))
    return clean_db, graphs, uids


@pytest.fixture
def realistic(clean_db):
    """A synthetic graph of realistic shape (120 features, 2,500 edges), stored."""
    config = SyntheticConfig(n_features=120, n_edges=2500, seed=3)
    graph = synthetic_graph(
        "the capital of the state containing dallas is", config, answer="austin"
    )
    return clean_db, graph, store(clean_db, graph)


def paths(driver, **params):
    return run_query(handle_of(driver), "token_logit_paths", params).frame


def same_paths(found, expected) -> None:
    """The query's rows are exactly the reference's (strength, node ids) paths."""
    assert len(found) == len(expected) > 0
    got = sorted(zip(found["strength"], map(tuple, found["node_ids"]), strict=True))
    want = sorted((s, tuple(ids)) for s, ids in expected)
    for (gs, gids), (ws, wids) in zip(got, want, strict=True):
        assert gids == wids and gs == pytest.approx(ws, rel=1e-5)


def test_path_query_returns_the_planted_chain_through_the_state_feature(corpus):
    driver, graphs, uids = corpus
    found = paths(driver, token="dallas", logit="austin")
    top = found.iloc[0]
    assert top["graph_uid"] == uids["dallas"]
    assert top["features"] == [TEXAS_STATE, TEXAS_CAPITAL]
    assert top["weights"] == pytest.approx([4.0, 3.0, 5.0])
    expected = reference_paths(graphs["dallas"], "dallas", "austin", 2, 4, 1e-4)[0]
    assert top["strength"] == pytest.approx(expected[0], rel=1e-5)
    assert top["node_ids"] == expected[1] and top["hops"] == 3 and top["sign"] == 1
    assert set(found["graph_uid"]) == {uids["dallas"]}  # no other graph has both ends


@pytest.mark.parametrize(
    ("token", "logit", "min_hops", "max_hops", "min_strength"),
    [("the", "austin", 2, 4, 1e-5), ("capital", "the", 1, 3, 1e-4), ("dallas", "austin", 3, 3, 0)],
)
def test_path_query_equals_brute_force_enumeration(
    corpus, token, logit, min_hops, max_hops, min_strength
):
    driver, graphs, uids = corpus
    found = paths(
        driver, token=token, logit=logit, graph=uids["dallas"], min_hops=min_hops,
        max_hops=max_hops, min_strength=min_strength, per_graph=10_000, limit=10_000,
    )  # fmt: skip
    expected = reference_paths(graphs["dallas"], token, logit, min_hops, max_hops, min_strength)
    same_paths(found, expected)


def test_path_query_on_a_realistic_synthetic_graph(realistic):
    driver, graph, uid = realistic
    found = paths(driver, token="the", logit="austin", graph=uid, per_graph=10_000, limit=10_000)
    expected = reference_paths(graph, "the", "austin", 2, 4, 1e-4)
    assert len(found) > 10
    same_paths(found, expected)
    assert found["strength"].tolist() == pytest.approx([s for s, _ in expected], rel=1e-5)
    for k in (1, 5):  # the per-graph floor prunes partial paths, exactly
        top = paths(driver, token="the", logit="austin", graph=uid, per_graph=k)
        assert top["strength"].tolist() == pytest.approx([s for s, _ in expected[:k]], rel=1e-5)
    for max_hops in (2, 3, 5):  # the last two hops look sources up differently
        found = paths(
            driver, token="the", logit="austin", graph=uid, max_hops=max_hops, min_hops=1,
            per_graph=10_000, limit=10_000,
        )  # fmt: skip
        same_paths(found, reference_paths(graph, "the", "austin", 1, max_hops, 1e-4))


@pytest.mark.parametrize(("token", "max_up", "max_down"), [("the", 3, 3), (None, 2, 4)])
def test_chain_query_equals_brute_force_enumeration(realistic, token, max_up, max_down):
    driver, graph, uid = realistic
    uids = sorted({f"{graph.transcoder}/{n.layer}/{n.feature_index}" for n in graph.nodes
                   if n.kind == "feature"})  # fmt: skip
    counts = {via: len(reference_chains(graph, via, token, "austin", max_up, max_down, 1e-4))
              for via in uids}  # fmt: skip
    busiest = sorted(uids, key=lambda via: -counts[via])[:3]
    assert counts[busiest[-1]] > 0
    for via in busiest:
        found = run_query(handle_of(driver), "feature_chains", {
            "via": via, "token": token, "logit": "austin", "max_up": max_up,
            "max_down": max_down, "per_graph": 10_000, "limit": 10_000,
        }).frame  # fmt: skip
        same_paths(found, reference_chains(graph, via, token, "austin", max_up, max_down, 1e-4))
        assert set(found["via_feature"]) == {via}


def test_answer_features_equal_brute_force_enumeration(clean_db):
    config = SyntheticConfig(n_features=80, n_edges=1500, seed=5)
    graphs = [
        synthetic_graph(f"the capital of the state containing {city} is", config, answer="austin")
        for city in ("dallas", "houston", "lubbock")
    ]
    for graph in graphs:
        store(clean_db, graph)
    answers = [max((n for n in g.nodes if n.kind == "logit"), key=lambda n: n.probability).token
               for g in graphs]  # fmt: skip
    expected = reference_answer_features(graphs, answers, 4, 1e-3)
    found = run_query(handle_of(clean_db), "answer_path_features", {
        "tag": "two-hop", "min_fraction": 0.0, "limit": 10_000,
    }).frame.set_index("feature_uid")  # fmt: skip
    assert set(found.index) == set(expected) and len(expected) > 5
    for uid, (n_graphs, mean_best) in expected.items():
        assert found.loc[uid, "n_graphs"] == n_graphs
        assert found.loc[uid, "fraction"] == pytest.approx(n_graphs / 3)
        assert found.loc[uid, "mean_best_strength"] == pytest.approx(mean_best, rel=1e-5)
    most = run_query(
        handle_of(clean_db), "answer_path_features", {"tag": "two-hop", "min_fraction": 0.9}
    )
    assert set(most.frame["feature_uid"]) == {uid for uid, (n, _) in expected.items() if n == 3}


def test_path_query_filters_and_only_complete_graphs(corpus):
    driver, _, uids = corpus
    assert set(paths(driver, token="oakland", logit="sacramento")["graph_uid"]) == {uids["oakland"]}
    assert paths(driver, token="oakland", logit="sacramento", tag="texas").empty
    assert not paths(driver, token="oakland", logit="sacramento", tag="california").empty
    assert paths(driver, token="dallas", logit="austin", model="other-model").empty
    assert paths(driver, token="dallas", logit="austin", transcoder="other-clt").empty
    driver.execute_query("MATCH (g:Graph {uid: $uid}) SET g.status = 'failed'", uid=uids["dallas"])
    assert paths(driver, token="dallas", logit="austin").empty


def test_chains_through_a_feature_and_through_a_supernode(corpus):
    driver, _, uids = corpus
    chains = run_query(
        handle_of(driver), "feature_chains", {"via": TEXAS_STATE, "token": "dallas"}
    ).frame
    assert set(chains["graph_uid"]) == {uids["dallas"]}
    assert chains.iloc[0]["features"] == [TEXAS_STATE, TEXAS_CAPITAL]
    any_city = run_query(handle_of(driver), "feature_chains", {"via": TEXAS_STATE}).frame
    assert set(any_city["graph_uid"]) == {uids["dallas"], uids["houston"]}
    driver.execute_query(
        "CREATE (s:Supernode {name: 'state'}) WITH s MATCH (f:Feature) WHERE f.uid IN $uids "
        "CREATE (s)-[:GROUPS]->(f)",
        uids=[TEXAS_STATE, CALIFORNIA_STATE],
    )
    via_group = run_query(handle_of(driver), "feature_chains", {"via": "state"}).frame
    assert set(via_group["graph_uid"]) == set(uids.values())
    assert set(via_group["via_feature"]) == {TEXAS_STATE, CALIFORNIA_STATE}


def test_features_on_paths_to_the_answer_in_most_tagged_graphs(corpus):
    driver, _, _ = corpus
    found = run_query(
        handle_of(driver), "answer_path_features", {"tag": "two-hop", "min_fraction": 0.6}
    ).frame
    rows = found.set_index("feature_uid")
    assert rows.loc[TEXAS_STATE, "n_graphs"] == 2
    assert rows.loc[TEXAS_STATE, "fraction"] == pytest.approx(2 / 3)
    assert rows.loc[TEXAS_CAPITAL, "n_graphs"] == 2
    assert CALIFORNIA_STATE not in rows.index  # 1 of 3 graphs
    everything = run_query(
        handle_of(driver), "answer_path_features", {"tag": "two-hop", "min_fraction": 0}
    )
    assert CALIFORNIA_STATE in set(everything.frame["feature_uid"])


def test_feature_prompts_and_neighbourhood(corpus):
    driver, graphs, uids = corpus
    prompts = run_query(handle_of(driver), "feature_prompts", {"feature": TEXAS_STATE}).frame
    assert set(prompts["graph_uid"]) == {uids["dallas"], uids["houston"]}
    dallas = prompts.set_index("graph_uid").loc[uids["dallas"]]
    state_node = next(n for n in graphs["dallas"].nodes if n.node_id == dallas["node_id"])
    assert dallas["activation"] == pytest.approx(state_node.activation)
    assert dallas["token"] == "dallas" and dallas["position"] == 7
    around = run_query(handle_of(driver), "feature_neighbourhood", {"feature": TEXAS_STATE}).frame
    output = around[(around["direction"] == "output") & (around["neighbour_uid"] == TEXAS_CAPITAL)]
    assert output.iloc[0]["n_graphs"] == 2
    assert output.iloc[0]["sum_weight"] == pytest.approx(6.0)


def test_graph_diff_of_prompts_differing_in_one_word(clean_db):
    from db.schema import ensure_schema

    ensure_schema(handle_of(clean_db))
    graph_a, graph_b = planted_graph("dallas"), planted_graph("houston", chain=(4.0, 1.0, 5.0))
    a, b = store(clean_db, graph_a), store(clean_db, graph_b)
    diff = run_query(
        handle_of(clean_db), "graph_diff", {"graph_a": a, "graph_b": b, "limit": 500}
    ).frame
    keyed = {
        (r.change, r.item, r.source_key, r.target_key if isinstance(r.target_key, str) else None): r
        for r in diff.itertuples()
    }
    assert ("only_in_a", "node", "token:dallas@7", None) in keyed
    assert ("only_in_b", "node", "token:houston@7", None) in keyed
    state, capital = f"{TEXAS_STATE}@7", f"{TEXAS_CAPITAL}@8"
    changed = keyed["weight_change", "edge", state, capital]
    assert (changed.value_a, changed.value_b, changed.delta) == pytest.approx((3.0, 1.0, -2.0))
    assert ("only_in_a", "edge", "token:dallas@7", state) in keyed
    assert not any(k[2] == state and k[1] == "node" for k in keyed)  # shared node
    expected = diff_reference(graph_a, graph_b)
    assert len(diff) == len(expected) < 500  # below the limit: every change
    assert keyed.keys() == expected.keys()
    for key, (value_a, value_b) in expected.items():
        row = keyed[key]
        assert [None if pd.isna(v) else v for v in (row.value_a, row.value_b)] == [
            None if v is None else pytest.approx(v) for v in (value_a, value_b)
        ], key


def diff_reference(a, b) -> dict[tuple, tuple[float | None, float | None]]:
    """graph_diff's rows, (change, item, source key, target key) -> (value in a, value in b), from
    the records: nodes in one graph only, edges in one only or in both (a weight change)."""

    def key(n) -> str:
        if n.kind == "feature":
            return f"{feature_uid(n.layer, n.feature_index)}@{n.position}"
        if n.kind in ("token", "logit"):
            return f"{n.kind}:{n.token}" + ("" if n.kind == "logit" else f"@{n.position}")
        return f"error:{n.layer}@{n.position}"

    sides = []
    for graph in (a, b):
        keys = [key(n) for n in graph.nodes]
        nodes = {
            (k, None): n.activation if n.activation is not None else n.probability
            for k, n in zip(keys, graph.nodes, strict=True)
        }
        edges = {
            (keys[s], keys[t]): float(w)
            for s, t, w in zip(graph.edge_source, graph.edge_target, graph.edge_weight, strict=True)
        }
        sides.append({"node": nodes, "edge": edges})
    rows = {}
    for item in ("node", "edge"):
        in_a, in_b = sides[0][item], sides[1][item]
        for k in in_a.keys() | in_b.keys():
            if k not in in_b:
                rows["only_in_a", item, *k] = (in_a[k], None)
            elif k not in in_a:
                rows["only_in_b", item, *k] = (None, in_b[k])
            elif item == "edge":
                rows["weight_change", item, *k] = (in_a[k], in_b[k])
    return rows


def test_corpus_stats(corpus):
    driver, graphs, _ = corpus
    stats = run_query(handle_of(driver), "corpus_stats").frame
    assert len(stats) == 1
    row = stats.iloc[0]
    assert row["graphs_complete"] == 3 and row["graphs_failed"] == 0 and row["prompts"] == 3
    assert row["edges"] == sum(g.n_edges for g in graphs.values())
    assert row["nodes"] == sum(len(g.nodes) for g in graphs.values())
    distinct = {
        (n.layer, n.feature_index) for g in graphs.values() for n in g.nodes if n.kind == "feature"
    }
    assert row["features_seen"] == len(distinct)
    assert row["replacement_p50"] == pytest.approx(0.6)


def test_influence_ranks_smallest_share_first(corpus):
    """`influence` is a cumulative share (docs/schema.md): the smallest is the most influential."""
    driver, _, uids = corpus
    for city, influence, activation in (("dallas", 0.6, 5.0), ("houston", 0.05, 1.0)):
        driver.execute_query(
            "MATCH (n:Node {graph_uid: $g, feature_uid: $f}) "
            "SET n.influence = $i, n.activation = $a",
            g=uids[city], f=TEXAS_STATE, i=influence, a=activation,
        )  # fmt: skip
    ranked = run_query(
        handle_of(driver), "feature_prompts", {"feature": TEXAS_STATE, "order_by": "influence"}
    )
    assert ranked.frame["graph_uid"].tolist() == [uids["houston"], uids["dallas"]]
    by_activation = run_query(handle_of(driver), "feature_prompts", {"feature": TEXAS_STATE}).frame
    assert by_activation["graph_uid"].tolist() == [uids["dallas"], uids["houston"]]
    top = run_query(
        handle_of(driver), "feature_chains", {"via": TEXAS_STATE, "max_instances": 1}
    ).frame
    assert set(top["graph_uid"]) == {uids["houston"]}
