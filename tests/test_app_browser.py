"""The graph view in a real browser: Playwright drives Debian's Chromium (headless) against
`circuitmap dashboard` over the demo's graphs, opens a two-hop prompt, clicks its busiest feature,
checks that its connections appear, and saves screenshots to tests/artifacts/ (graph_view.png,
feature_page.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app_fixtures import wipe, write_demo
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EDGES_DRAWN,
    IDLE,
    click_node,
    dashboard_server,
    open_graph_page,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AKRON = "two_hop:akron"  # the capital of the state containing akron is -> columbus


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
def dashboard(neo4j_driver, demo_sample):
    wipe(neo4j_driver)
    corpus = write_demo(neo4j_driver, demo_sample, with_failure=False)
    try:
        with dashboard_server() as url:
            yield url, corpus
    finally:
        wipe(neo4j_driver)


def _count(page, tab: str) -> int:
    label = page.get_by_text(f"{tab} (").first.inner_text()
    return int(label.split("(")[1].rstrip(")"))


def test_graph_view_click_selects_a_node_and_shows_its_connections(browser, dashboard):
    url, corpus = dashboard
    page = browser.new_page(viewport={"width": 1700, "height": 1300})
    seconds = open_graph_page(page, url, corpus.graphs[AKRON])
    print(f"graph page drawn in {seconds:.2f} s")
    assert page.get_by_text(corpus.prompt(AKRON).text).count() > 0
    hub = next(n for n in corpus.record(AKRON).nodes if n.node_id == corpus.hub(AKRON))
    picked, seconds = click_node(page, hub.node_id)
    print(f"selection drawn in {seconds:.2f} s")
    assert picked == hub.node_id and f"sel={picked}" in page.url
    heading = f"F L{hub.layer}/{hub.feature_index} @{hub.position} {hub.label}"
    assert page.locator("h4").filter(has_text=heading).count() == 1  # the side pane
    n_inputs, n_outputs = _count(page, "Inputs"), _count(page, "Outputs")
    assert n_inputs > 0
    assert page.evaluate(EDGES_DRAWN) == n_inputs + n_outputs  # every connection is drawn
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "graph_view.png"), full_page=True)
    page.get_by_text("Feature page").click()
    page.wait_for_selector(IDLE, timeout=60_000)
    page.wait_for_selector("text=Top activating contexts", timeout=60_000)
    assert page.get_by_label("Label", exact=True).input_value() == hub.label
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "feature_page.png"), full_page=True)
    page.close()
