"""The corpus circuit page in a real browser (issue 14: "renders in AppTest and in Chromium"):
Playwright drives Debian's Chromium against `circuitmap dashboard` over 24 planted two-hop graphs
(tests/planted.py) and checks what the graph component draws: every node and edge of the tag's
corpus circuit, node size and edge width growing with the graphs that support them, dragging,
and a click on a node opening its instances. Saves a screenshot to tests/artifacts/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from db.connection import Neo4jHandle, database_name
from db.schema import ensure_schema
from queries.corpus import PathSearch, corpus_circuit
from queries.supernodes import create_supernode
from tests.app_fixtures import wipe
from tests.browser import IDLE, chromium, dashboard_server, drag_mouse, translation
from tests.planted import CAPITAL_INDEX, STATE_INDEX, feature_uid, planted_graph, store

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TAG = "two-hop"
CIRCUIT = ".cm-cc"  # the corpus circuit's root in the component
TEXAS = sorted({feature_uid(0, STATE_INDEX["texas"]), feature_uid(2, CAPITAL_INDEX["texas"])})


@pytest.fixture(scope="module")
def circuit(neo4j_driver):
    """24 planted two-hop graphs and a "texas" supernode; the dashboard and the circuit the page
    is expected to draw (the page's defaults: all supernodes, features in 2 graphs or more)."""
    wipe(neo4j_driver)
    handle = Neo4jHandle(neo4j_driver, database_name())
    ensure_schema(handle)
    for seed in range(8):
        for city in ("dallas", "houston", "oakland"):
            graph = planted_graph(city, seed=seed)
            store(neo4j_driver, dataclasses.replace(graph, prompt=f"{graph.prompt} ({seed})"))
    create_supernode(handle, "texas", members=TEXAS)
    expected = corpus_circuit(handle, TAG, None, PathSearch(2))
    try:
        with dashboard_server() as url:
            yield url, expected
    finally:
        wipe(neo4j_driver)


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def _drawn(page) -> dict:
    nodes = page.locator(f"{CIRCUIT} .cm-pnode").evaluate_all(
        """els => els.map(g => {
             const r = g.querySelector('path').getBoundingClientRect();
             return [g.dataset.id, Number(g.dataset.support), r.width, g.getAttribute('transform')];
           })"""
    )
    edges = page.locator(f"{CIRCUIT} .cm-edge").evaluate_all(
        "els => els.map(p => [Number(p.dataset.n), Number(p.getAttribute('stroke-width'))])"
    )
    return {"nodes": nodes, "edges": edges}


def test_the_corpus_circuit_is_drawn_and_a_node_opens_its_instances(browser, circuit):
    url, expected = circuit
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/corpus_circuit?tag={TAG}")
    page.wait_for_selector(IDLE, timeout=120_000)
    page.wait_for_selector(f"{CIRCUIT} .cm-pnode", timeout=60_000)
    drawn = _drawn(page)
    assert {n[0] for n in drawn["nodes"]} == set(expected.nodes["node"])
    assert "supernode:texas" in {n[0] for n in drawn["nodes"]}
    assert len(drawn["edges"]) == len(expected.edges) > 0
    # node size and edge width grow with the number of graphs that support them
    by_support = sorted((support, width) for _, support, width, _ in drawn["nodes"])
    assert all(a[1] <= b[1] + 0.01 for a, b in zip(by_support, by_support[1:], strict=False))
    assert by_support[0][1] < by_support[-1][1]
    by_graphs = sorted(drawn["edges"])
    assert all(a[1] <= b[1] + 0.01 for a, b in zip(by_graphs, by_graphs[1:], strict=False))
    # nodes drag
    node = page.locator(f'{CIRCUIT} .cm-pnode[data-id="supernode:texas"] path')
    node.scroll_into_view_if_needed()
    before = translation(node.locator("xpath=..").get_attribute("transform"))
    box = node.bounding_box()
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    drag_mouse(page, start, (start[0] + 40, start[1] - 30))
    after = translation(node.locator("xpath=..").get_attribute("transform"))
    assert abs(after[0] - before[0] - 40) < 2 and abs(after[1] - before[1] + 30) < 2
    # a click opens the node's instances, each of which opens its graph
    node.click()
    page.wait_for_selector(IDLE, timeout=60_000)
    heading = page.get_by_text("instances (most influential first")
    heading.wait_for(timeout=60_000)
    n_graphs = int(expected.nodes.set_index("node").at["supernode:texas", "support"])
    assert int(heading.inner_text().split()[0]) >= n_graphs  # one or more a graph
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "corpus_circuit.png"), full_page=True)
    page.close()
