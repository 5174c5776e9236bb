"""Every dashboard page through streamlit's AppTest, against a real Neo4j holding the demo's graphs
(a fixed sample of demo prompts, feature labels from the demo catalogue) and one failed prompt:
no exceptions, the expected elements, and selection through session state."""

from __future__ import annotations

import pytest

from app.data.graphs import load_graph
from app.graphview.state import GraphViewState
from db.connection import Neo4jHandle, database_name
from queries import saved, supernodes
from tests.app_fixtures import (
    FAILURE,
    clear_app_caches,
    component_data,
    open_page,
    table,
    texts,
    wipe,
    write_demo,
)

AKRON = "two_hop:akron"  # the capital of the state containing akron is -> columbus (ohio)
ADDITION = "addition:1+9"


@pytest.fixture(scope="module")
def corpus(neo4j_driver, demo_sample):
    wipe(neo4j_driver)
    yield write_demo(neo4j_driver, demo_sample)
    wipe(neo4j_driver)


@pytest.fixture(scope="module")
def with_path(corpus, demo) -> str:
    """A two-hop prompt whose city -> state -> capital path the build reports (on earlier
    machines akron; the demo model's weights differ between machines)."""
    return corpus.with_state_path(demo)[0]


@pytest.fixture(scope="module")
def handle(neo4j_driver) -> Neo4jHandle:
    return Neo4jHandle(neo4j_driver, database_name())


def ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_overview_shows_counts_scores_and_failures(corpus):
    at = open_page("views/overview.py")
    ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Complete graphs"] == str(len(corpus.graphs)) and metrics["Failed graphs"] == "1"
    assert len(at.get("plotly_chart")) == 2  # score and size distributions
    recent = table(at, "status", "created_at")
    assert set(recent["status"]) == {"complete", "failed"}
    assert FAILURE in set(table(at, "prompt", "error", without=("status",))["error"])


def test_prompts_filters_and_opens_a_graph(corpus):
    at = open_page("views/prompts.py")
    ok(at)
    assert len(at.dataframe(key="pr_table").value) == len(corpus.graphs)
    at.text_input(key="pr_text").set_value("capital")
    at.selectbox(key="pr_tag").select("two_hop")
    next(b for b in at.button if b.label == "Search").click().run()
    ok(at)
    found = at.dataframe(key="pr_table").value
    two_hop = corpus.sample.of_task("two_hop")
    assert len(found) == len(two_hop) and found["prompt"].str.contains("capital").all()
    assert set(found["answer"]) == {p.answer for p, _ in two_hop}
    at.selectbox(key="pr_open_choice").select(corpus.graphs[AKRON])
    at.button(key="pr_open").click().run()
    ok(at)
    assert corpus.prompt(AKRON).text in texts(at)  # the graph view's header
    assert table(at, "token", "probability")["token"].iloc[0] == "columbus"


def test_graph_view_header_logits_and_empty_side_pane(corpus):
    at = open_page("views/graph.py", graph=corpus.graphs[AKRON])
    ok(at)
    shown = texts(at)
    assert corpus.prompt(AKRON).text in shown
    assert "replacement score" in shown and "completeness score" in shown
    # the client-side graph view: the chart and the pinned subgraph
    assert [c.key for c in at.get("bidi_component")] == ["gv_chart", "gv_pinned"]
    logits = table(at, "token", "probability")
    assert logits["token"].iloc[0] == corpus.prompt(AKRON).answer == "columbus"
    assert logits["probability"].is_monotonic_decreasing
    assert "Select a node" in shown


def test_selecting_a_node_shows_its_connections_and_goes_to_the_url(corpus):
    hub = corpus.hub(AKRON)
    at = open_page("views/graph.py", graph=corpus.graphs[AKRON])
    at.selectbox(key="gv_find").select(hub).run()
    ok(at)
    assert at.query_params["sel"] == [hub] or at.query_params["sel"] == hub
    assert [t.label for t in at.tabs] == ["Inputs", "Outputs"]
    counts = next(c.value for c in at.caption if c.value.endswith(" outputs"))
    assert int(counts.split()[0]) > 0  # "<n> inputs · <m> outputs"
    inputs = at.dataframe(key=f"gv_in_{hub}").value
    assert inputs["weight"].abs().is_monotonic_decreasing
    assert abs(inputs["share"].sum() - 1.0) < 1e-6  # every input of the node is listed
    at.button(key="gv_clear").click().run()
    assert "sel" not in at.query_params


def test_a_state_feature_is_labelled_with_its_state(corpus, with_path):
    state = corpus.prompt(with_path).metadata["state"]
    strongest = corpus.state_features(with_path)[0]  # "state <state> · ..." in the catalogue
    at = open_page("views/graph.py", graph=corpus.graphs[with_path], sel=strongest.node_id)
    ok(at)
    assert strongest.label.startswith(f"state {state} ·")
    assert strongest.label in texts(at)  # the side pane's heading


def test_pins_groups_and_threshold_live_in_the_url(corpus):
    hub, graph = corpus.hub(AKRON), corpus.graphs[AKRON]
    at = open_page("views/graph.py", graph=graph, sel=hub)
    at.button(key="gv_pin_toggle").click().run()
    ok(at)
    at.selectbox(key="gv_find").select(_first_input(at, hub)).run()
    at.button(key="gv_pin_toggle").click().run()
    state = _state(at)
    assert len(state.pinned) == 2 and hub in state.pinned
    assert component_data(at, "gv_pinned")["state"]["pinned"] == state.pinned  # the subgraph
    at.multiselect(key="gv_group_members").set_value(state.pinned)
    at.text_input(key="gv_group_name").set_value("Ohio pair")
    next(b for b in at.button if b.label == "Group").click().run()
    ok(at)
    assert _state(at).groups == {"Ohio pair": state.pinned}
    # the threshold is the component's (tests/test_app_browser.py moves it); from a shared link
    # it reaches the component, and the groups reach the page
    state = _state(at)
    state.threshold = 0.8
    reopened = open_page("views/graph.py", **state.to_params())
    ok(reopened)
    sent = component_data(reopened, "gv_pinned")["state"]
    assert sent["threshold"] == 0.8 and sent["groups"] == {"Ohio pair": state.pinned}
    assert "Ohio pair" in texts(reopened)


def test_group_saved_as_supernode(corpus, handle, with_path):
    members = corpus.state_features(with_path)
    state = GraphViewState(graph=corpus.graphs[with_path], pinned=[n.node_id for n in members])
    state.group("state", state.pinned)
    at = open_page("views/graph.py", **state.to_params())
    ok(at)
    at.button(key="gv_save_state").click().run()
    ok(at)
    saved = supernodes.get_supernode(handle, "state")
    # the same catalogue feature at several positions is one supernode member
    assert saved is not None
    assert set(saved.members) == {corpus.feature_uid(n, with_path) for n in members}
    supernodes.delete_supernode(handle, "state")


def test_too_big_graph_gives_a_message_not_a_chart(corpus, monkeypatch):
    monkeypatch.setenv("CIRCUITMAP_APP_MAX_NODES", "5")
    at = open_page("views/graph.py", graph=corpus.graphs[AKRON])
    assert not at.exception
    assert "more than the 5 the view draws" in texts(at)
    assert not at.get("bidi_component")


def test_unknown_and_failed_graphs_are_clear_messages(corpus, handle):
    at = open_page("views/graph.py", graph="no-such-graph")
    assert not at.exception
    assert "no graph with uid 'no-such-graph'" in " ".join(e.value for e in at.error)
    records = handle.read("MATCH (g:Graph {status: 'failed'}) RETURN g.uid AS uid")
    at = open_page("views/graph.py", graph=records[0]["uid"])
    assert not at.exception
    assert FAILURE in " ".join(e.value for e in at.error)


def test_feature_page_label_contexts_and_corpus(corpus, handle, with_path):
    state = corpus.prompt(with_path).metadata["state"]
    strongest = corpus.state_features(with_path)[0]
    uid = corpus.feature_uid(strongest, with_path)
    at = open_page("views/feature.py", feature=uid)
    ok(at)
    assert at.title[0].value == f"Feature L{strongest.layer}/{strongest.feature_index}"
    label = at.text_input(key=f"ft_label_{uid}")
    assert label.value == strongest.label and f"state {state} ·" in label.value
    assert "cm-ctx" in at.get("html")[0].proto.body  # the top context, tokens shaded
    assert len(at.get("plotly_chart")) == 2  # logit effects, activation distribution
    appearances = at.dataframe(key="ft_graphs").value
    assert corpus.prompt(with_path).text in set(appearances["prompt"])
    assert any(t.label.startswith("Strongest inputs") for t in at.tabs)
    label.set_value("says ohio")
    next(b for b in at.button if b.label == "Save label").click().run()
    ok(at)
    assert "Label saved" in texts(at)
    records = handle.read("MATCH (f:Feature {uid: $uid}) RETURN f.label AS label", {"uid": uid})
    assert records[0]["label"] == "says ohio"


def test_feature_picker_finds_features_by_label(corpus, with_path):
    state = f"state {corpus.prompt(with_path).metadata['state']}"  # a label the catalogue has
    at = open_page("views/feature.py")
    ok(at)
    at.text_input(key="ft_search").set_value(state).run()
    ok(at)
    options = at.selectbox(key="ft_pick").options
    assert options and all(state in o for o in options)
    first = options[0].split()[0]  # options read "<uid>  <label>"
    at.selectbox(key="ft_pick").select(first).run()
    ok(at)
    assert at.query_params["feature"] in (first, [first])
    layer, index = first.split("/")[-2:]
    assert at.title[0].value == f"Feature L{layer}/{index}"


def test_workbench_runs_a_path_query_draws_a_path_and_makes_a_supernode(corpus, handle):
    at = open_page("views/workbench.py", query="token_logit_paths")
    ok(at)
    at.text_input(key="wb_p_token_logit_paths_token").set_value("akron")
    at.text_input(key="wb_p_token_logit_paths_logit").set_value("columbus")
    at.number_input(key="wb_p_token_logit_paths_min_strength").set_value(0.0)
    next(b for b in at.button if b.label == "Run").click().run()
    ok(at)
    paths = table(at, "node_ids", "strength")
    assert len(paths) > 0 and paths["strength"].is_monotonic_decreasing
    assert at.get("plotly_chart")  # the path, drawn
    at.text_input(key="wb_sn_name").set_value("akron-to-columbus")
    next(b for b in at.button if b.label == "Create supernode").click().run()
    ok(at)
    made = supernodes.get_supernode(handle, "akron-to-columbus")
    assert made is not None and made.members
    supernodes.delete_supernode(handle, "akron-to-columbus")


def test_workbench_refuses_writes_and_saves_read_queries(corpus, handle):
    at = open_page("views/workbench.py")
    at.segmented_control(key="wb_mode").set_value("Write Cypher").run()
    at.text_area(key="wb_cypher").set_value("MATCH (n) DETACH DELETE n")
    next(b for b in at.button if b.label == "Run").click().run()
    assert not at.exception
    assert "refused" in " ".join(e.value for e in at.error)
    at = open_page("views/workbench.py")
    at.segmented_control(key="wb_mode").set_value("Write Cypher").run()
    at.text_area(key="wb_cypher").set_value(
        "MATCH (f:Feature) WHERE f.label STARTS WITH 'state ' RETURN f.uid AS feature_uid, "
        "f.label AS label ORDER BY f.uid LIMIT 3"
    )
    at.text_input(key="wb_save_name").set_value("state_features")
    next(b for b in at.button if b.label == "Save query").click().run()
    ok(at)
    picked = open_page("views/workbench.py", query="saved:state_features")
    ok(picked)
    next(b for b in picked.button if b.label == "Run").click().run()
    found = table(picked, "feature_uid", "label")
    assert 0 < len(found) <= 3 and found["label"].str.startswith("state ").all()


def test_supernodes_page_lists_refreshes_and_collapses(corpus, handle):
    uid = corpus.feature_uid(corpus.features(AKRON)[0], AKRON)
    saved.save_query(
        handle,
        "busy_features",
        "MATCH (f:Feature) WHERE f.n_graphs >= $min RETURN f.uid AS feature_uid",
        params={"min": 99},
    )
    supernodes.create_supernode(handle, "busy", query_name="busy_features", params={"min": 99})
    handle.write("MATCH (f:Feature {uid: $uid}) SET f.n_graphs = 100", {"uid": uid})
    clear_app_caches()
    at = open_page("views/supernodes.py", supernode="busy")
    ok(at)
    assert "busy" in set(table(at, "name", "members")["name"])
    assert at.dataframe(key="sn_members").value.empty
    at.button(key="sn_refresh").click().run()  # the query now finds the feature
    ok(at)
    assert list(at.dataframe(key="sn_members").value["feature_uid"]) == [uid]
    assert len(table(at, "at", "members")) == 2  # two revisions in the history
    at.selectbox(key="sn_graph_busy").select(corpus.graphs[AKRON]).run()
    ok(at)
    assert at.get("plotly_chart")  # the graph collapsed to the supernode
    assert "1 supernode(s)" in texts(at)
    supernodes.delete_supernode(handle, "busy")
    saved.delete_query(handle, "busy_features")


def test_compare_shows_two_graphs_and_their_difference(corpus):
    at = open_page("views/compare.py", a=corpus.graphs[AKRON], b=corpus.graphs[ADDITION])
    ok(at)
    assert len(at.get("plotly_chart")) == 2
    counts = table(at, "change", "item", "rows")
    assert {"only_in_a", "only_in_b"} <= set(counts["change"])
    shown = texts(at)
    assert corpus.prompt(AKRON).text in shown and corpus.prompt(ADDITION).text in shown


def test_every_page_says_when_neo4j_is_down(corpus, monkeypatch):
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:9")
    monkeypatch.setenv("NEO4J_PASSWORD", "unused")
    clear_app_caches()
    try:
        for page in PAGES:
            at = open_page(page, graph=corpus.graphs[AKRON])
            assert not at.exception, page
            assert "Neo4j is not reachable" in " ".join(e.value for e in at.error), page
    finally:
        clear_app_caches()


PAGES = [
    "views/overview.py",
    "views/prompts.py",
    "views/graph.py",
    "views/feature.py",
    "views/workbench.py",
    "views/supernodes.py",
    "views/compare.py",
    "views/interventions.py",
]


def _state(at) -> GraphViewState:
    params = {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}
    return GraphViewState.from_params(params)


def _first_input(at, node_id: str) -> str:
    """The strongest input of `node_id` (the first row of the side pane's table)."""
    edges = load_graph(_state(at).graph).edges
    inputs = edges[edges["target"] == node_id]
    return inputs.loc[inputs["weight"].abs().idxmax(), "source"]
