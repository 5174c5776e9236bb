"""The graph view in a real browser: Playwright drives Debian's Chromium (headless) against
`circuitmap dashboard`, clicks a node, checks its connections appear, and saves screenshots to
tests/artifacts/ (graph_view.png, feature_page.png)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from cli.dashboard import streamlit_command
from tests.app_fixtures import wipe, write_corpus

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
# Screen position of a node of the graph chart, from Plotly's own data (nodes are SVG points).
NODE_XY = """(id) => {
  const gd = document.querySelector('.js-plotly-plot');
  const i = gd._fullData.findIndex(t => t.customdata && Array.from(t.customdata).includes(id));
  if (i < 0) return null;
  const j = Array.from(gd._fullData[i].customdata).indexOf(id);
  const point = gd.querySelectorAll('.scatterlayer .trace')[i].querySelectorAll('.point')[j];
  const r = point.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
}"""
# Segments drawn by the edge traces (each edge is two points and a gap).
EDGES_DRAWN = """() => document.querySelector('.js-plotly-plot')._fullData
  .filter(t => t.mode === 'lines').reduce((n, t) => n + t.x.length / 3, 0)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (make venv installs it)"
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
    corpus = write_corpus(neo4j_driver, n=3)
    port = _free_port()
    server = subprocess.Popen(
        streamlit_command(port, "127.0.0.1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url, corpus
    finally:
        server.terminate()
        server.wait(timeout=30)
        wipe(neo4j_driver)


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dashboard exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the dashboard did not answer at {url} within {timeout:.0f} s")


def test_graph_view_click_selects_a_node_and_shows_its_connections(browser, dashboard):
    url, corpus = dashboard
    two_hop = corpus.prompts.index(next(p for p in corpus.prompts if "two-hop" in p["tags"]))
    graph, hub = corpus.graphs[two_hop], corpus.hub if two_hop == 0 else None
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    start = time.perf_counter()
    page.goto(f"{url}/graph?graph={graph}")
    page.wait_for_selector(IDLE, timeout=60_000)
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)
    print(f"graph page loaded and drawn in {time.perf_counter() - start:.2f} s")
    assert hub is not None  # synthetic_prompts starts with a two-hop prompt
    x, y = page.evaluate(NODE_XY, hub)
    page.mouse.move(x, y)
    start = time.perf_counter()
    page.mouse.click(x, y)
    page.wait_for_selector("text=Inputs (", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    page.wait_for_function(f"() => ({EDGES_DRAWN})() > 0", timeout=60_000)
    print(f"selection drawn in {time.perf_counter() - start:.2f} s")
    assert f"sel={hub}" in page.url
    n_inputs = int(page.get_by_text("Inputs (").first.inner_text().split("(")[1].rstrip(")"))
    n_outputs = int(page.get_by_text("Outputs (").first.inner_text().split("(")[1].rstrip(")"))
    assert n_inputs > 0
    assert page.evaluate(EDGES_DRAWN) == n_inputs + n_outputs  # every connection is drawn
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "graph_view.png"), full_page=True)
    feature_link = page.get_by_text("Feature page")
    feature_link.click()
    page.wait_for_selector(IDLE, timeout=60_000)
    page.wait_for_selector("text=Top activating contexts", timeout=60_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "feature_page.png"), full_page=True)
    page.close()
