"""The dashboard's graph view as pure functions: layout, pruning control, edges, URL state. On a
synthetic graph of 200 features: the demo's graphs (18 to 60 nodes) have no crowded cells and
too few nodes to prune by a node budget. And, on a real Neo4j, that a warm page load reads
nothing again and sends the chart the same message whatever the view state."""

import html

import numpy as np
import pytest

from app.data import graphs
from app.graphview.collapse import collapse
from app.graphview.connections import connections, with_shares
from app.graphview.figure import NODES_TRACE_NAME, SELECTED_COLOR, ViewMarks, graph_figure
from app.graphview.frames import among, record_frames
from app.graphview.layout import band_of, layout
from app.graphview.prune import prune_by_influence, threshold_for
from app.graphview.state import GraphViewState
from app.ui import graph_panel
from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from tests.app_fixtures import clear_app_caches, component_data, open_page, wipe, write_small_corpus

PROMPT = "the capital of the state containing dallas is"


@pytest.fixture(scope="module")
def frames():
    record = synthetic_graph(PROMPT, SyntheticConfig(n_features=200, n_edges=3000), answer="austin")
    nodes, edges = record_frames(record)
    return record, nodes, edges


def test_layout_puts_tokens_bottom_logits_top_and_features_in_their_column(frames):
    record, nodes, _ = frames
    placed = layout(nodes, record.n_layers)
    tokens = placed[placed["kind"] == "token"]
    assert (tokens["y"] == 0).all() and (tokens["x"] == tokens["position"]).all()
    assert (placed.loc[placed["kind"] == "logit", "y"] == record.n_layers + 1).all()
    inner = placed[placed["kind"].isin(("feature", "error"))]
    assert (np.abs(inner["x"] - inner["position"]) < 0.5).all()
    assert (np.abs(inner["y"] - (inner["layer"] + 1)) < 0.5).all()
    assert not placed.duplicated(["x", "y"]).any()
    assert band_of("feature", 2, record.n_layers) == 3


def test_pruning_threshold_keeps_tokens_logits_and_the_most_influential(frames):
    _, nodes, edges = frames
    kept, kept_edges = prune_by_influence(nodes, edges, 0.3)
    always = nodes["kind"].isin(("token", "logit"))
    assert set(nodes.loc[always, "node_id"]) <= set(kept["node_id"])
    inner = kept[~kept["kind"].isin(("token", "logit"))]
    assert 0 < len(inner) < (~always).sum()
    assert (inner["influence"] <= 0.3).all()  # cumulative influence: small = influential
    assert kept_edges["source"].isin(kept["node_id"]).all()
    assert prune_by_influence(nodes, edges, 1.0)[0] is nodes
    limit = int(always.sum()) + 150
    assert len(prune_by_influence(nodes, edges, threshold_for(nodes, limit))[0]) <= limit
    with pytest.raises(ValueError, match="threshold"):
        prune_by_influence(nodes, edges, 0)


def test_connections_sorted_by_strength_with_shares_of_the_target_input(frames):
    _, nodes, edges = frames
    shared = with_shares(edges)
    assert np.allclose(shared.groupby("target")["share"].sum(), 1.0)
    hub = edges["target"].value_counts().index[0]
    inputs, outputs = connections(nodes, shared, hub)
    assert len(inputs) == (edges["target"] == hub).sum()
    assert (np.diff(inputs["weight"].abs().to_numpy()) <= 0).all()
    assert outputs["node_id"].isin(edges.loc[edges["source"] == hub, "target"]).all()


def test_figure_draws_selected_node_magenta_with_its_edges(frames):
    record, nodes, edges = frames
    shared = with_shares(edges)
    selected = edges["target"].value_counts().index[0]
    fig = graph_figure(
        layout(nodes, record.n_layers),
        shared,
        record.n_layers,
        record.prompt_tokens,
        ViewMarks(selected, [], {}),
    )
    node_traces = [t for t in fig.data if t.name.startswith(NODES_TRACE_NAME)]
    chosen = [t for t in node_traces if selected in list(t.customdata)]
    assert len(chosen) == 1 and list(chosen[0].customdata) == [selected]
    assert chosen[0].marker.color == SELECTED_COLOR
    assert sum(len(t.customdata) for t in node_traces) == len(nodes)
    drawn = sum(
        int(np.isnan(np.asarray(t.x, dtype=float)).sum())
        for t in fig.data
        if not t.name.startswith(NODES_TRACE_NAME)
    )
    assert drawn == ((edges["source"] == selected) | (edges["target"] == selected)).sum()
    assert [html.unescape(t) for t in fig.layout.xaxis.ticktext] == record.prompt_tokens


def test_collapse_merges_groups_and_sums_edges_between_them(frames):
    _, nodes, edges = frames
    features = nodes[nodes["kind"] == "feature"]["node_id"].tolist()
    groups = {"a": features[:5], "b": features[5:10]}
    merged, summed = collapse(nodes, edges, groups)
    assert len(merged) == len(nodes) - 10 + 2
    assert not summed["source"].isin(features[:10]).any()
    inside = edges["source"].isin(groups["a"]) & edges["target"].isin(groups["b"])
    between = summed[(summed["source"] == "group:a") & (summed["target"] == "group:b")]
    assert np.isclose(between["weight"].sum(), edges.loc[inside, "weight"].sum())
    assert not (summed["source"] == summed["target"]).any()


def test_url_state_round_trips_and_ignores_garbage():
    state = GraphViewState(graph="p:1", selected="1_2_3", pinned=["1_2_3", "E_5_0"], threshold=0.7)
    state.group("Texas, the state", ["1_2_3"])
    again = GraphViewState.from_params(state.to_params())
    assert again == state
    assert GraphViewState.from_params({"graph": "g", "thr": "7", "sn": "{oops"}) == GraphViewState(
        graph="g"
    )
    state.toggle_pin("1_2_3")
    assert state.pinned == ["E_5_0"] and state.groups == {}
    with pytest.raises(ValueError, match="name"):
        state.group(" ", ["E_5_0"])


def test_among_is_isin(frames):
    _, nodes, edges = frames
    some = nodes["node_id"].iloc[::7].tolist() + ["not-a-node"]
    assert (among(edges["source"], some) == edges["source"].isin(some).to_numpy()).all()
    assert among(edges["source"], some).sum() > 0
    assert not among(edges["source"], []).any()


@pytest.fixture(scope="module")
def small_corpus(neo4j_driver):
    wipe(neo4j_driver)
    yield write_small_corpus(neo4j_driver)
    wipe(neo4j_driver)


def test_a_warm_load_reads_nothing_again_and_the_chart_message_ignores_the_state(
    small_corpus, monkeypatch
):
    clear_app_caches()
    reads = {"edges": 0, "cards": 0}

    def counted(name, read):
        def wrapper(*args, **kwargs):
            reads[name] += 1
            return read(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(graphs, "read_edges", counted("edges", graphs.read_edges))
    monkeypatch.setattr(
        graph_panel, "catalogue_cards", counted("cards", graph_panel.catalogue_cards)
    )
    uid = small_corpus.graphs["two_hop:akron"]
    node = small_corpus.records["two_hop:akron"].nodes[-1].node_id
    first = open_page("views/graph.py", graph=uid)
    again = open_page("views/graph.py", graph=uid, sel=node, pin=node)  # another session
    assert not first.exception and not again.exception
    assert reads == {"edges": 1, "cards": 1}  # the graph and its cards were read once
    # the chart's message is the same (the browser's copy is reused); the state travels apart
    assert component_data(first) == component_data(again)
    assert component_data(again, "gv_pinned")["state"]["pinned"] == [node]
