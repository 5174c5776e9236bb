"""The graph view in a real browser: Playwright drives Debian's Chromium (headless) against
`circuitmap dashboard` over the small synthetic corpus (tests/app_fixtures.py), and checks what the
client-side graph component draws: the hover card, a selection with its edges, pins with their
labels, a group made with the G key, box-select, the pinned subgraph and dragging its nodes, the
threshold and error filters, a layout without overlaps that fits above the fold at 1280x800, and
that a rerun does not send the graph again. Saves screenshots to tests/artifacts/."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from app.component.graphview import BUILT_JS
from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from db.connection import Neo4jHandle, database_name
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.app_fixtures import AKRON_TEXT, SUM_UID, wipe, write_small_corpus
from tests.browser import (
    BOXES,
    DRAWN,
    FIND_VIEW,
    GRAPH,
    IDLE,
    PINNED,
    chromium,
    click_node,
    dashboard_server,
    drag_mouse,
    hover_node,
    open_graph_page,
    pinned_nodes,
    translation,
    wait_url,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AKRON = "two_hop:akron"
LONG_TEXT = (
    "when the researchers finally compared the attribution graphs of the two prompts side by "
    "side they noticed that the capital of the state containing dallas is"
)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def dashboard(neo4j_driver):
    wipe(neo4j_driver)
    corpus = write_small_corpus(neo4j_driver)
    try:
        with dashboard_server() as url:
            yield url, corpus
    finally:
        wipe(neo4j_driver)


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    yield page
    page.close()


def _edges_of(record, node_id: str) -> int:
    i = [n.node_id for n in record.nodes].index(node_id)
    return int(((record.edge_source == i) | (record.edge_target == i)).sum())


def _hub(record) -> str:
    counts = {}
    for s, t in zip(record.edge_source.tolist(), record.edge_target.tolist(), strict=True):
        for k in (s, t):
            if record.nodes[k].kind == "feature":
                counts[k] = counts.get(k, 0) + 1
    return record.nodes[max(counts, key=lambda k: (counts[k], -k))].node_id


def _set_range(page, selector: str, value: float) -> None:
    page.locator(selector).evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
        value,
    )


def test_hover_card_shows_label_activation_influence_and_the_catalogue(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    open_graph_page(page, url, corpus.graphs[AKRON])
    feature = next(n for n in record.nodes if n.kind == "feature")
    seconds = hover_node(page, feature.node_id)
    card = page.evaluate(DRAWN)["card"]
    print(f"hover card drawn in {seconds * 1000:.0f} ms")
    assert f"F L{feature.layer}/{feature.feature_index}" in card
    assert "activation" in card and "smaller = more influential" in card
    assert "Top activations" in card and "ohio" in card  # the catalogue's context
    assert "Promotes" in card and "austin" in card  # its logit effects


def test_click_selects_walks_and_the_selection_reaches_the_url(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    open_graph_page(page, url, corpus.graphs[AKRON])
    hub = _hub(record)
    selected, seconds = click_node(page, hub)
    print(f"selection drawn in {seconds * 1000:.0f} ms")
    drawn = page.evaluate(DRAWN)
    assert selected == hub and drawn["edges"] == _edges_of(record, hub)  # every edge drawn
    faded = page.locator(f"{GRAPH} .cm-node.faded").count()
    assert 0 < faded < drawn["nodes"]  # the rest fades
    wait_url(page, f"sel={hub}")
    heading = next(n for n in record.nodes if n.node_id == hub).label
    page.locator("h4").filter(has_text=heading[:20]).first.wait_for(timeout=30_000)  # side pane
    # walk: click a neighbour, then click it again to clear
    i = [n.node_id for n in record.nodes].index(hub)
    neighbour = record.nodes[int(record.edge_source[record.edge_target == i][0])].node_id
    assert click_node(page, neighbour)[0] == neighbour
    assert click_node(page, neighbour)[0] == ""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "graph_view.png"))


def test_pins_carry_labels_and_the_g_key_groups_them(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    open_graph_page(page, url, corpus.graphs[AKRON])
    feats = sorted((n for n in record.nodes if n.kind == "feature"), key=lambda n: n.influence)[:2]
    for n in feats:
        click_node(page, n.node_id, modifiers=["Shift"])
    drawn = page.evaluate(DRAWN)
    assert drawn["pinned"] == [n.node_id for n in feats]
    assert sorted(drawn["pinLabels"]) == sorted(n.label for n in feats)
    page.keyboard.press("g")
    drawn = page.evaluate(DRAWN)
    assert drawn["groups"] == {"group 1": [n.node_id for n in feats]}
    colours = page.locator(f"{GRAPH} .cm-node[data-group='0']")
    assert colours.count() == 2
    assert colours.first.evaluate("el => getComputedStyle(el).fill") == "rgb(230, 85, 13)"
    wait_url(page, '"group 1"')  # the group reached the URL: the Python panes see it
    page.wait_for_selector("text=Save to database", timeout=30_000)


def test_a_box_dragged_over_empty_space_pins_the_nodes_inside(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    open_graph_page(page, url, corpus.graphs[AKRON])
    tokens = {n.node_id for n in record.nodes if n.kind == "token"}
    boxes = page.evaluate(BOXES)
    token_boxes = [b[1:] for b in boxes["nodes"] if b[0] in tokens]
    top = min(y for _, y, _, _ in token_boxes) - 4
    bottom = max(y + h for _, y, _, h in token_boxes) + 4
    right = max(x + w for x, _, w, _ in token_boxes) + 4
    left = boxes["svg"][0] + 46  # the plot's left edge, left of the first column's nodes
    inside = {
        node
        for node, x, y, w, h in boxes["nodes"]
        if left <= x + w / 2 <= right and top <= y + h / 2 <= bottom
    }
    assert inside == tokens  # the box holds the embedding row, nothing else
    drag_mouse(page, (left, top), (right, bottom))
    page.wait_for_function(
        "(n) => (" + FIND_VIEW + ")().dataset.pinned.split(',').filter(Boolean).length === n",
        arg=len(tokens),
    )
    assert set(page.evaluate(DRAWN)["pinned"]) == tokens
    assert page.evaluate(DRAWN)["selected"] == ""  # a box does not select
    drawn = pinned_nodes(page)  # the pinned subgraph shows them at once, labelled
    assert set(drawn) == tokens
    token_of = {n.node_id: n.token for n in record.nodes}
    assert all(token_of[i] in d["label"] for i, d in drawn.items()), drawn
    wait_url(page, "pin=")  # and the pins reach the URL


def test_pinned_subgraph_nodes_drag_and_their_edges_follow(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    open_graph_page(page, url, corpus.graphs[AKRON])
    hub = _hub(record)
    i = [n.node_id for n in record.nodes].index(hub)
    source = record.nodes[int(record.edge_source[record.edge_target == i][0])].node_id
    for node in (hub, source):
        click_node(page, node, modifiers=["Shift"])
    drawn = pinned_nodes(page)  # the panel drew the chart's pins (no round trip)
    assert set(drawn) == {hub, source}
    panel = page.locator(PINNED)
    assert panel.get_attribute("data-edges") == "1"  # the edge between the two pins
    edge = page.locator(f"{PINNED} .cm-edge")
    before_edge = edge.get_attribute("d")
    x0, y0 = translation(drawn[hub]["transform"])
    node = page.locator(f'{PINNED} .cm-pnode[data-id="{hub}"] path')
    node.scroll_into_view_if_needed()  # the panel is under the chart, below the fold
    box = node.bounding_box()
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    drag_mouse(page, start, (start[0] + 60, start[1] + 45))
    x1, y1 = translation(pinned_nodes(page)[hub]["transform"])
    assert abs(x1 - x0 - 60) < 2 and abs(y1 - y0 - 45) < 2  # the node follows the mouse
    assert edge.get_attribute("d") != before_edge  # and its edge with it
    assert translation(pinned_nodes(page)[source]["transform"]) == translation(
        drawn[source]["transform"]
    )
    assert page.evaluate(DRAWN)["selected"] == ""  # a drag is not a click
    # a click (no drag) on a pinned node selects it in the chart
    page.locator(f'{PINNED} .cm-pnode[data-id="{source}"] path').click()
    assert page.evaluate(DRAWN)["selected"] == source
    # a moved node keeps its place when the view redraws (a new pin)
    other = next(n.node_id for n in record.nodes if n.kind == "token")
    click_node(page, other, modifiers=["Shift"])
    assert translation(pinned_nodes(page)[hub]["transform"]) == (x1, y1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "pinned_subgraph.png"), full_page=True)


def test_a_rerun_does_not_send_the_graph_again(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    frames: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(len(f))))
    open_graph_page(page, url, corpus.graphs[AKRON])
    page.wait_for_selector(IDLE)
    chart = max(frames)  # the chart's graph, edges and catalogue cards
    loaded = len(frames)
    hub = _hub(record)
    click_node(page, hub)
    wait_url(page, f"sel={hub}")  # a rerun: the selection's side pane is drawn
    page.locator("h4").first.wait_for(timeout=30_000)
    after = frames[loaded:]
    # the pinned subgraph's instance comes again (it carries the new state, and the component's
    # JavaScript), the chart's graph does not
    script = BUILT_JS.stat().st_size
    assert chart > script + 20_000 and after and max(after) < script + 10_000, (chart, after)


def test_threshold_and_hide_errors_filter_the_drawing_in_the_page(page, dashboard):
    url, corpus = dashboard
    record = corpus.records[AKRON]
    open_graph_page(page, url, corpus.graphs[AKRON])
    assert page.evaluate(DRAWN)["nodes"] == len(record.nodes)
    _set_range(page, f"{GRAPH} .cm-thr", 0.5)
    kept = [n for n in record.nodes if n.kind in ("token", "logit") or n.influence <= 0.5]
    assert page.evaluate(DRAWN)["nodes"] == len(kept)
    page.locator(f"{GRAPH} .cm-hide-err").check()
    assert page.locator(f"{GRAPH} .cm-node.k-error").count() == 0
    assert page.evaluate(DRAWN)["nodes"] == len([n for n in kept if n.kind != "error"])
    hub = _hub(record)
    if hub in {n.node_id for n in kept}:
        click_node(page, hub)
        all_edges = page.evaluate(DRAWN)["edges"]
        _set_range(page, f"{GRAPH} .cm-share", 0.2)
        assert page.evaluate(DRAWN)["edges"] < all_edges


def _overlap(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(
        0.0, min(ay + ah, by + bh) - max(ay, by)
    )


def _check_layout(page) -> dict:
    """No two nodes overlap, no label is clipped, logit labels do not overlap each other, and
    the chart is above the fold of a 1280x800 window and takes most of its width."""
    boxes = page.evaluate(BOXES)
    sx, sy, sw, sh = boxes["svg"]
    assert sy + sh <= 800 and sw >= 0.6 * 1280
    nodes = [b[1:] for b in boxes["nodes"]]
    overlapping = sum(1 for a, b in itertools.combinations(nodes, 2) if _overlap(a, b) > 1.0)
    assert overlapping == 0
    labels = boxes["labels"]
    for text, x, y, w, h in labels:
        assert sx - 1 <= x and x + w <= sx + sw + 1 and sy - 1 <= y and y + h <= sy + sh + 1, text
    logit_labels = [b[1:] for b in labels if "%" in b[0]]
    assert all(_overlap(a, b) == 0 for a, b in itertools.combinations(logit_labels, 2))
    return boxes


@pytest.mark.parametrize("prompt", [AKRON, SUM_UID])
def test_layout_has_no_overlaps_no_clipped_labels_and_sits_above_the_fold(page, dashboard, prompt):
    url, corpus = dashboard
    open_graph_page(page, url, corpus.graphs[prompt])
    page.wait_for_selector(IDLE)
    _check_layout(page)
    if prompt == AKRON:
        assert page.get_by_text(AKRON_TEXT).count() > 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "graph_view_1280.png"))


def test_a_long_real_sized_prompt_fits_with_turned_token_labels(page, dashboard, neo4j_driver):
    url, _ = dashboard
    config = SyntheticConfig(n_features=600, n_edges=9000, n_layers=12)
    record = synthetic_graph(LONG_TEXT, config, answer="austin")
    handle = Neo4jHandle(neo4j_driver, database_name())
    uid = (
        GraphWriter(handle).write_graph(PromptRecord(uid="long", text=LONG_TEXT), record).graph_uid
    )
    open_graph_page(page, url, uid)
    assert page.evaluate(DRAWN)["nodes"] == len(record.nodes) > 700
    boxes = _check_layout(page)
    turned = page.locator(f"{GRAPH} .cm-tok").first.get_attribute("transform")
    assert turned and turned.startswith("rotate(-40")  # 30 tokens do not fit side by side
    assert len([b for b in boxes["labels"] if "%" not in b[0]]) == len(record.prompt_tokens)
