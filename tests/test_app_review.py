"""The bugs found reviewing every dashboard page (issue 15, section 3) and the corpus-aware
navigation (section 4), each checked where it showed: AppTest against a real Neo4j holding a small
synthetic corpus (tests/app_fixtures.py: three seeded graphs and their catalogue), or the helper
that was wrong."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from app.component.graphview import apply_sent_state
from app.graphview.connections import INFLUENCE_HINT
from app.graphview.figure import ViewMarks, _labels, graph_figure, hover_text
from app.graphview.frames import record_frames
from app.graphview.layout import layout
from app.graphview.scores import scores_from_edges
from app.graphview.state import GraphViewState
from app.ui.graph_header import picker_labels
from app.ui.intervention_results import by_change
from app.ui.records import displayable
from app.ui.text import literal
from db.connection import Neo4jHandle, database_name
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from queries import supernodes
from queries.library import load_library
from queries.runner import run_cypher
from tests.app_fixtures import (
    AKRON_TEXT,
    DALLAS_TEXT,
    SUM_TEXT,
    SUM_UID,
    WRONG_TOP,
    clear_app_caches,
    component_data,
    open_page,
    small_records,
    table,
    texts,
    wipe,
    write_small_corpus,
)

GROUP_NAME = "say_austin *x* $y$"
DELETE_SUPERNODES = "MATCH (s:Supernode) OPTIONAL MATCH (s)-[:HAS_REVISION]->(r) DETACH DELETE s, r"


@pytest.fixture(scope="module")
def corpus(neo4j_driver):
    wipe(neo4j_driver)
    yield write_small_corpus(neo4j_driver)
    wipe(neo4j_driver)


@pytest.fixture(scope="module")
def handle(neo4j_driver) -> Neo4jHandle:
    return Neo4jHandle(neo4j_driver, database_name())


@pytest.fixture
def no_supernodes(handle, corpus):
    handle.write(DELETE_SUPERNODES)
    clear_app_caches()
    yield corpus
    handle.write(DELETE_SUPERNODES)
    clear_app_caches()


def ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def features_of(record) -> list:
    return sorted((n for n in record.nodes if n.kind == "feature"), key=lambda n: n.influence)


def graph_url(state: GraphViewState) -> dict[str, str]:
    return state.to_params()


def param(at, key: str) -> str:
    value = at.query_params[key]
    return value[0] if isinstance(value, list) else value


def open_tab_index(at) -> int:
    """The tab the page opens with (the tab container's default_tab_index)."""

    def walk(node):
        proto = getattr(node, "proto", None)
        is_block = proto is not None and type(proto).__name__ == "Block"
        if is_block and proto.WhichOneof("type") == "tab_container":
            return proto.tab_container.default_tab_index
        for child in getattr(node, "children", {}).values():
            found = walk(child)
            if found is not None:
                return found
        return None

    return walk(at._tree)


# ---- 1. quotes shown as &quot; ------------------------------------------------------------


def test_quotes_stay_quotes_in_axis_tokens_logit_labels_and_group_names():
    _, record = small_records()[SUM_UID]
    nodes, edges = record_frames(record)
    nodes.loc[nodes["kind"] == "logit", "token"] = '"x"'
    fig = graph_figure(
        layout(nodes, record.n_layers), edges, record.n_layers, record.prompt_tokens, ViewMarks()
    )
    assert '"' in fig.layout.xaxis.ticktext and not any(
        "&quot;" in t for t in fig.layout.xaxis.ticktext
    )
    texts_drawn = [t for trace in fig.data if trace.text is not None for t in trace.text]
    assert texts_drawn and all("&quot;" not in t for t in texts_drawn)
    assert any(t.startswith('"x"') for t in texts_drawn)
    group = pd.DataFrame(
        {"kind": ["supernode"], "token": [""], "probability": [None], "label": ['say "austin"']}
    )
    assert _labels(group) == ['say "austin"']


# ---- 2. names rendered as Markdown ---------------------------------------------------------


def test_group_names_are_shown_as_typed_not_as_markdown(corpus):
    feats = [n.node_id for n in features_of(corpus.records["two_hop:akron"])[:2]]
    state = GraphViewState(corpus.graphs["two_hop:akron"], pinned=feats, groups={GROUP_NAME: feats})
    at = open_page("views/graph.py", **graph_url(state))
    ok(at)
    rows = [m.value for m in at.markdown if "say" in m.value]
    assert rows and rows[0].startswith(f"**{literal(GROUP_NAME)}**")
    assert literal(GROUP_NAME) == r"say\_austin \*x\* \$y\$"


# ---- 3. a + in a graph uid -----------------------------------------------------------------


def test_a_plus_in_a_graph_uid_read_back_as_a_space_still_opens_the_graph(corpus):
    uid = corpus.graphs[SUM_UID]
    assert "+" in uid
    at = open_page("views/graph.py", graph=uid.replace("+", " "))  # what parse_qs makes of a +
    ok(at)
    assert literal(SUM_TEXT) in texts(at)
    assert param(at, "graph") == uid


# ---- 4. influence: smaller is more influential ---------------------------------------------


def test_influence_says_that_smaller_is_more_influential(corpus):
    record = corpus.records["two_hop:akron"]
    nodes, _ = record_frames(record)
    feature = nodes[nodes["kind"] == "feature"].iloc[0].to_dict()
    assert INFLUENCE_HINT in hover_text(feature)
    top = features_of(record)[0]
    at = open_page("views/graph.py", graph=corpus.graphs["two_hop:akron"], sel=top.node_id)
    ok(at)
    assert any("influence" in c.value and INFLUENCE_HINT in c.value for c in at.caption)


# ---- 5. tag, model and graph parameters are pickers ----------------------------------------


def test_tag_model_and_graph_parameters_are_pickers_filled_from_the_database(corpus):
    tag = next(p for p in load_library()["answer_path_features"].params if p.name == "tag")
    assert '"two_hop"' in tag.doc
    at = open_page("views/workbench.py", query="answer_path_features")
    ok(at)
    tag_box = at.selectbox(key="wb_p_answer_path_features_tag")
    assert sorted(tag_box.options) == ["addition", "two_hop"]
    assert at.selectbox(key="wb_p_answer_path_features_model").options == ["synthetic-model"]
    at = open_page("views/workbench.py", query="graph_nodes")
    ok(at)
    graphs = at.selectbox(key="wb_p_graph_nodes_graph")
    assert len(graphs.options) == len(corpus.graphs)


# ---- 6. workbench results as Python reprs --------------------------------------------------


def test_query_results_show_nodes_by_label_and_properties(handle, corpus):
    result = run_cypher(
        handle,
        "MATCH (g:Graph {uid: $uid})-[r:HAS_NODE]->(n:TokenNode) RETURN g, r, n LIMIT 1",
        {"uid": corpus.graphs["two_hop:akron"]},
        row_cap=10,
    )
    shown = displayable(result.frame).iloc[0]
    assert shown["g"].startswith("(:Graph {") and corpus.graphs["two_hop:akron"] in shown["g"]
    assert shown["r"].startswith("[:HAS_NODE")
    assert shown["n"].startswith("(:Node:TokenNode {")
    assert "<Node" not in " ".join(map(str, shown.tolist()))


# ---- 7. intervention results sorted by change ----------------------------------------------


def test_intervention_results_put_the_largest_change_first():
    result = pd.DataFrame(
        {
            "token": ["a", "b", "c"],
            "original": [0.50, 0.30, 0.01],
            "intervened": [0.48, 0.02, 0.40],
        }
    )
    result["change"] = result["intervened"] - result["original"]
    assert by_change(result)["token"].tolist() == ["c", "b", "a"]


# ---- 8. the graph picker cuts off the differing word ---------------------------------------


def test_graph_picker_labels_lead_with_the_word_that_differs():
    graphs = pd.DataFrame(
        {
            "graph_uid": ["g1", "g2"],
            "prompt": [AKRON_TEXT, DALLAS_TEXT],
            "transcoder_uid": ["synthetic-clt"] * 2,
        }
    )
    labels = picker_labels(graphs)
    assert "akron" in labels["g1"][:30] and "dallas" in labels["g2"][:30]
    assert len(set(labels.values())) == 2


# ---- 9. walking from the Outputs tab -------------------------------------------------------


def test_walking_to_a_neighbour_keeps_the_outputs_tab_open(corpus):
    record = corpus.records["two_hop:akron"]
    uid = corpus.graphs["two_hop:akron"]
    start = next(
        record.nodes[s].node_id
        for s, t in zip(record.edge_source.tolist(), record.edge_target.tolist(), strict=True)
        if record.nodes[s].kind == "feature" and record.nodes[t].kind == "feature"
    )
    at = open_page("views/graph.py", graph=uid, sel=start)
    ok(at)
    assert open_tab_index(at) == 0
    at.session_state["gv_direction"] = "Outputs"
    at.run()
    assert open_tab_index(at) == 1
    outputs = [
        record.nodes[t].node_id
        for s, t in zip(record.edge_source.tolist(), record.edge_target.tolist(), strict=True)
        if record.nodes[s].node_id == start
    ]
    at.selectbox(key="gv_find").select(outputs[0]).run()  # walk to an output
    ok(at)
    assert param(at, "sel") == outputs[0]
    assert open_tab_index(at) == 1


# ---- 10. compare's threshold ---------------------------------------------------------------


def test_compare_threshold_defaults_like_the_graph_view_and_lives_in_the_url(corpus):
    at = open_page("views/compare.py")
    ok(at)
    assert at.slider(key="cmp_thr").value == GraphViewState().threshold == 1.0
    at.slider(key="cmp_thr").set_value(0.5).run()
    ok(at)
    assert param(at, "thr") == "0.5"
    at = open_page("views/compare.py", thr="0.3")
    assert at.slider(key="cmp_thr").value == 0.3


# ---- 11. a wrong prediction in the header --------------------------------------------------


def test_graph_header_flags_a_wrong_top_prediction(corpus):
    at = open_page("views/graph.py", graph=corpus.graphs[SUM_UID])
    ok(at)
    shown = texts(at)
    assert f"top prediction **{WRONG_TOP}**" in shown and "✗ expected **189**" in shown
    at = open_page("views/graph.py", graph=corpus.graphs["two_hop:akron"])
    assert "top prediction **columbus**" in texts(at) and "✓ expected" in texts(at)


# ---- 12. deleting a supernode in one click -------------------------------------------------


def test_deleting_a_supernode_asks_for_confirmation(handle, no_supernodes):
    corpus = no_supernodes
    member = corpus.feature_uid(features_of(corpus.records["two_hop:akron"])[0])
    supernodes.create_supernode(handle, "doomed", members=[member])
    clear_app_caches()
    at = open_page("views/supernodes.py", supernode="doomed")
    ok(at)
    at.button(key="sn_delete").click().run()
    ok(at)
    assert supernodes.get_supernode(handle, "doomed") is not None
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="sn_delete_cancel").click().run()
    assert supernodes.get_supernode(handle, "doomed") is not None
    at.button(key="sn_delete").click().run()
    at.button(key="sn_delete_confirm").click().run()
    assert supernodes.get_supernode(handle, "doomed") is None


# ---- 13. saving a group under an existing name ---------------------------------------------


def test_saving_a_group_under_an_existing_name_refuses_at_full_width(handle, no_supernodes):
    corpus = no_supernodes
    record = corpus.records["two_hop:akron"]
    feats = features_of(record)[:2]
    supernodes.create_supernode(handle, "Texas", members=[corpus.feature_uid(feats[0])])
    clear_app_caches()
    ids = [n.node_id for n in feats]
    state = GraphViewState(
        corpus.graphs["two_hop:akron"], pinned=ids, groups={"Texas": ids, "my group": ids[1:]}
    )
    at = open_page("views/graph.py", **graph_url(state))
    at.button(key="gv_save_Texas").click().run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # shown as typed: escaped
    assert any("already exists" in e and "Nothing was saved" in e for e in errors)
    assert supernodes.get_supernode(handle, "Texas").members == [corpus.feature_uid(feats[0])]
    at.button(key="gv_save_my-group").click().run()
    saved = [s.value.replace("\\", "") for s in at.success]
    assert any("renamed from 'my group'" in s and "'my-group'" in s for s in saved)
    assert supernodes.get_supernode(handle, "my-group") is not None


# ---- 14. the supernodes page's collapsed view ----------------------------------------------


def test_collapsed_view_defaults_to_a_graph_where_the_supernode_has_members(handle, no_supernodes):
    corpus = no_supernodes
    uids = {
        name: {corpus.feature_uid(n) for n in features_of(r)} for name, r in corpus.records.items()
    }
    shared = sorted((uids["two_hop:akron"] & uids["two_hop:dallas"]) - uids[SUM_UID])
    assert shared
    supernodes.create_supernode(handle, "capital", members=shared[:3])
    clear_app_caches()
    at = open_page("views/supernodes.py", supernode="capital")
    ok(at)
    graph_box = at.selectbox(key="sn_graph_capital")
    assert graph_box.value in (corpus.graphs["two_hop:akron"], corpus.graphs["two_hop:dallas"])
    assert not any("has a member" in i.value for i in at.info)
    other = next(
        corpus.graphs[p]
        for p in ("two_hop:akron", "two_hop:dallas")
        if corpus.graphs[p] != graph_box.value
    )
    graph_box.select(other).run()
    ok(at)
    focus = at.selectbox(key=f"sn_collapsed_{other}_focus")
    assert focus.value == "group:capital"
    # the supernode lists the graphs where it appears
    listed = table(at, "prompt", "members_present")
    assert set(listed["prompt"]) == {AKRON_TEXT, DALLAS_TEXT}


# ---- 15. a layer-0 feature's input tokens --------------------------------------------------


def test_feature_page_counts_the_tokens_that_feed_a_feature(corpus):
    record = corpus.records["two_hop:akron"]
    fed = [
        (record.nodes[s], record.nodes[t])
        for s, t in zip(record.edge_source.tolist(), record.edge_target.tolist(), strict=True)
        if record.nodes[s].kind == "token" and record.nodes[t].kind == "feature"
    ]
    token, feature = min(fed, key=lambda pair: pair[1].layer)  # a layer-0 feature if one is fed
    uid = corpus.feature_uid(feature)
    at = open_page("views/feature.py", feature=uid)
    ok(at)
    label = next(t.label for t in at.tabs if t.label.startswith("Strongest inputs"))
    assert label != "Strongest inputs (0)"
    assert token.token in set(table(at, "token", "mean_share")["token"])


# ---- section 4: corpus-aware navigation ----------------------------------------------------


def test_prompts_show_the_top_prediction_and_whether_it_is_expected(corpus):
    at = open_page("views/prompts.py")
    ok(at)
    rows = at.dataframe(key="pr_table").value.set_index("prompt")
    assert rows.loc[SUM_TEXT, "top_prediction"] == WRONG_TOP and not rows.loc[SUM_TEXT, "correct"]
    assert rows.loc[AKRON_TEXT, "top_prediction"] == "columbus" and rows.loc[AKRON_TEXT, "correct"]


def test_feature_appearances_filter_by_tag_with_the_activation_distribution(corpus):
    sums = {corpus.feature_uid(n) for n in features_of(corpus.records[SUM_UID])}
    uid = next(
        u
        for u in (corpus.feature_uid(n) for n in features_of(corpus.records["two_hop:akron"]))
        if u in sums
    )
    at = open_page("views/feature.py", feature=uid)
    ok(at)
    assert {SUM_TEXT, AKRON_TEXT} <= set(at.dataframe(key="ft_graphs").value["prompt"])
    assert len(at.get("plotly_chart")) >= 1  # the activation histogram
    at.selectbox(key="ft_tag").select("addition").run()
    ok(at)
    assert set(at.dataframe(key="ft_graphs").value["prompt"]) == {SUM_TEXT}


# ---- the client-side graph view: what Python sends it and takes back -----------------------


def test_the_graph_view_gets_the_graph_its_catalogue_cards_and_the_url_state(corpus):
    record = corpus.records["two_hop:akron"]
    feats = [n.node_id for n in features_of(record)[:3]]
    state = GraphViewState(
        corpus.graphs["two_hop:akron"], feats[0], feats[:2], {"pair": feats[:2]}, 0.7
    )
    at = open_page("views/graph.py", **state.to_params())
    ok(at)
    data = component_data(at)
    assert component_data(at, "gv_pinned")["state"] == {
        "selected": feats[0],
        "pinned": feats[:2],
        "groups": {"pair": feats[:2]},
        "threshold": 0.7,
    }
    assert data["nodes"]["id"] == [n.node_id for n in record.nodes] or sorted(
        data["nodes"]["id"]
    ) == sorted(n.node_id for n in record.nodes)
    assert "state" not in data  # the chart's message stays the same when the state changes
    index_type = np.uint16 if data["edges"]["index_bytes"] == 2 else np.int32
    sources = np.frombuffer(base64.b64decode(data["edges"]["source"]), index_type)
    weights = np.frombuffer(base64.b64decode(data["edges"]["weight"]), np.float32)
    assert len(sources) == len(record.edge_weight) and sources.max() < len(record.nodes)
    assert np.allclose(np.sort(weights), np.sort(record.edge_weight), atol=1e-6)
    uids = {corpus.feature_uid(n) for n in record.nodes if n.kind == "feature"}
    cards = {c["feature_uid"]: c for c in data["cards"]}
    assert set(cards) == uids  # one batch with the graph: every feature's card
    some = next(iter(cards.values()))
    assert json.loads(some["top_contexts"])[0]["tokens"] == ["the", "state", "of", "ohio"]
    assert some["top_logits"] == ["austin", "columbus"]


def test_state_sent_by_the_graph_view_is_cleaned_before_it_reaches_the_url():
    state = GraphViewState("g")
    apply_sent_state(
        state,
        {
            "selected": "a",
            "pinned": ["a", "b", "a"],
            "groups": {"x": ["a", "zz"], "empty": ["zz"], "bad": "a"},
            "threshold": 7,
        },
    )
    assert (state.selected, state.pinned, state.groups) == ("a", ["a", "b"], {"x": ["a"]})
    assert state.threshold == 1.0  # out of range: kept as it was
    apply_sent_state(state, {"threshold": 0.25})
    assert state.threshold == 0.25 and state.pinned == []


def test_prompts_filter_by_contained_feature_or_supernode(handle, no_supernodes):
    corpus = no_supernodes
    uids = {
        name: {corpus.feature_uid(n) for n in features_of(r)} for name, r in corpus.records.items()
    }
    only_sum = sorted(uids[SUM_UID] - uids["two_hop:akron"] - uids["two_hop:dallas"])
    only_akron = sorted(uids["two_hop:akron"] - uids[SUM_UID] - uids["two_hop:dallas"])
    supernodes.create_supernode(handle, "sums", members=only_sum[:2])
    clear_app_caches()
    at = open_page("views/prompts.py")
    ok(at)
    at.selectbox(key="pr_supernode").select("sums")
    next(b for b in at.button if b.label == "Search").click().run()
    ok(at)
    assert set(at.dataframe(key="pr_table").value["prompt"]) == {SUM_TEXT}
    at.selectbox(key="pr_supernode").select(None)
    at.text_input(key="pr_feature").set_value(only_akron[0])
    next(b for b in at.button if b.label == "Search").click().run()
    ok(at)
    assert set(at.dataframe(key="pr_table").value["prompt"]) == {AKRON_TEXT}


# ---- section 6: scores of graphs stored without them ---------------------------------------


def test_scores_from_edges_follow_the_definitions_on_a_hand_made_graph():
    nodes = pd.DataFrame(
        {
            "node_id": ["t0", "e", "f", "e2", "l"],
            "kind": ["token", "error", "feature", "error", "logit"],
            "probability": [None, None, None, None, 1.0],
        }
    )
    edges = pd.DataFrame(
        {"source": ["t0", "e", "f", "e2"], "target": ["f", "f", "l", "l"], "weight": [2, -1, 1, 1]}
    )
    scores = scores_from_edges(nodes, edges)
    # influence: f 1/2, e2 1/2, t0 1/3, e 1/6; replacement = tokens / (tokens + errors)
    assert scores.replacement == pytest.approx(1 / 3)
    # non-error shares f 2/3, l 1/2, weighted by influence + logit weight (sum 2.5)
    assert scores.completeness == pytest.approx((1 / 3 + 1 / 2 + 1 / 3 + 1 / 6 + 1 / 2) / 2.5)


def test_a_graph_stored_without_scores_shows_them_computed_on_the_pruned_graph(handle, corpus):
    prompt, record = small_records()["two_hop:dallas"]
    record.scores = {}
    imported = PromptRecord(uid="imported:dallas", text=prompt.text + " today")
    uid = GraphWriter(handle).write_graph(imported, record).graph_uid
    clear_app_caches()
    at = open_page("views/graph.py", graph=uid)
    ok(at)
    shown = texts(at)
    assert "(computed on the pruned graph: the file had none)" in shown
    expected = scores_from_edges(*record_frames(record))
    assert f"replacement score **{expected.replacement:.3f}**" in shown


def test_a_graph_too_big_to_draw_offers_a_threshold_that_draws_it(corpus, monkeypatch):
    monkeypatch.setenv("CIRCUITMAP_APP_MAX_NODES", "40")
    at = open_page("views/graph.py", graph=corpus.graphs["two_hop:akron"])
    ok(at)
    assert "more than the 40 the view draws" in texts(at) and not at.get("bidi_component")
    at.slider(key="gv_thr_big").set_value(0.3).run()
    ok(at)
    assert param(at, "thr") == "0.3" and len(at.get("bidi_component")) == 2  # chart and pins
