"""Driving the dashboard in Debian's Chromium with Playwright: shared by the browser test and the
dashboard benchmark (bench/dashboard.py)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.dashboard import streamlit_command

CHROMIUM = Path("/usr/bin/chromium")
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
RUNNING = "[data-testid='stApp'][data-test-script-state='running']"
NODE_POINT = ".js-plotly-plot .scatterlayer .point"
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
# The node under the mouse, as Plotly's hover picked it (null while none).
HOVERED = """() => {
  const hover = document.querySelector('.js-plotly-plot')._hoverdata;
  return hover && hover.length ? hover[0].customdata : null;
}"""
# True once the chart shows `id` as the selected node.
SHOWS_SELECTED = """(id) => {
  const gd = document.querySelector('.js-plotly-plot');
  return !!gd && !!gd._fullData && gd._fullData.some(
    t => t.name && t.name.endsWith(':selected') && Array.from(t.customdata).includes(id));
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard_server(timeout: float = 90) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port (environment inherited); yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        streamlit_command(port, "127.0.0.1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, timeout)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float) -> None:
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


def open_graph_page(page, url: str, graph_uid: str, timeout_ms: int = 90_000) -> float:
    """Load the graph view of `graph_uid`; seconds until the script is done and nodes are drawn."""
    start = time.perf_counter()
    page.goto(f"{url}/graph?graph={graph_uid}")
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_selector(NODE_POINT, timeout=timeout_ms)
    return time.perf_counter() - start


def click_node(page, node_id: str, timeout_ms: int = 90_000) -> tuple[str, float]:
    """Click a node of the chart: (the node Plotly picked, seconds until the chart shows it
    selected, or no longer selected if it was, and the run is over). In crowded cells markers
    overlap, so the node under the cursor (Plotly's hover data) may be a neighbour of `node_id`."""
    x, y = page.evaluate(NODE_XY, node_id)
    page.mouse.move(x, y)
    page.wait_for_function(HOVERED, timeout=timeout_ms)
    picked = page.evaluate(HOVERED)
    toggles_off = page.evaluate(SHOWS_SELECTED, picked)  # clicking the selected node clears it
    start = time.perf_counter()
    page.mouse.click(x, y)
    done = f"(id) => ({SHOWS_SELECTED})(id) !== {'true' if toggles_off else 'false'}"
    page.wait_for_function(done, arg=picked, timeout=timeout_ms)
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    return picked, time.perf_counter() - start
