"""The graph view in a real browser: Playwright drives Debian's Chromium (headless) against
`circuitmap dashboard` over the small synthetic corpus (tests/app_fixtures.py), and checks what the
client-side graph component draws: the hover card, a selection with its edges, pins with their
labels, a group made with the G key, the threshold and error filters, and a layout without
overlaps that fits above the fold at 1280x800. Saves screenshots to tests/artifacts/."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from db.connection import Neo4jHandle, database_name
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.app_fixtures import AKRON_TEXT, SUM_UID, wipe, write_small_corpus
from tests.browser import (
    BOXES,
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAWN,
    GRAPH,
    IDLE,
    click_node,
    dashboard_server,
    hover_node,
    open_graph_page,
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
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (`make venv` installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
