"""Driving the dashboard in Debian's Chromium with Playwright: shared by the browser test and the
dashboard benchmark (bench/dashboard.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.parse
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
GRAPH = ".cm-gv"  # the graph view component's root (inside its shadow root: locators pierce it)
NODE = ".cm-node"
PINNED = ".cm-pv"  # the pinned subgraph's root (the component's second instance)
PINNED_NODE = ".cm-pnode"
# The component's root element from page JavaScript (document.querySelector does not enter
# shadow roots).
FIND_VIEW = """() => {
  for (const host of document.querySelectorAll('.stBidiComponent, [class*="BidiComponent"], div')) {
    const gv = host.shadowRoot && host.shadowRoot.querySelector('.cm-gv');
    if (gv) return gv;
  }
  return document.querySelector('.cm-gv');
}"""
# Arms a timer for the next change of one of the view's data attributes ("selected", "pinned",
# "groups", "hovered"): from the input event that caused it (click or mouse move) until the
# browser has painted the frame after it; the result lands in window.__cmElapsed (ms).
ARM = """([attribute, expected]) => {
  const gv = (FIND)();
  window.__cmElapsed = null;
  let t0 = null;
  const start = (e) => { if (t0 === null) t0 = e.timeStamp; };
  for (const type of ['mousedown', 'mousemove', 'mouseover', 'keydown']) {
    gv.addEventListener(type, start, {capture: true, once: true});
  }
  const key = 'data-' + attribute;
  const obs = new MutationObserver(() => {
    if (gv.getAttribute(key) !== expected) return;
    obs.disconnect();
    requestAnimationFrame(() => requestAnimationFrame(() => {
      window.__cmElapsed = performance.now() - (t0 === null ? performance.now() : t0);
    }));
  });
  obs.observe(gv, {attributes: true, attributeFilter: [key]});
}""".replace("(FIND)", "(" + FIND_VIEW + ")")
ELAPSED = "() => window.__cmElapsed"
# What the view shows: its state and the edges and labels drawn.
DRAWN = """() => {
  const gv = (FIND)();
  return {
    selected: gv.dataset.selected || '',
    pinned: (gv.dataset.pinned || '').split(',').filter(Boolean),
    groups: JSON.parse(gv.dataset.groups || '{}'),
    hovered: gv.dataset.hovered || '',
    edges: gv.querySelectorAll('.cm-edge').length,
    pinLabels: Array.from(gv.querySelectorAll('.cm-pin-label')).map(t => t.textContent),
    nodes: gv.querySelectorAll('.cm-node').length,
    card: gv.querySelector('.cm-card').hidden ? '' : gv.querySelector('.cm-card').innerText,
  };
}""".replace("(FIND)", "(" + FIND_VIEW + ")")
# Bounding boxes of the drawn nodes and labels (for the overlap and clipping checks).
BOXES = """() => {
  const gv = (FIND)();
  const svg = gv.querySelector('svg').getBoundingClientRect();
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return [r.x, r.y, r.width, r.height];
  };
  return {
    svg: [svg.x, svg.y, svg.width, svg.height],
    nodes: Array.from(gv.querySelectorAll('.cm-node')).map(el => [el.dataset.id, ...box(el)]),
    labels: Array.from(gv.querySelectorAll('.cm-logit, .cm-tok'))
      .map(el => [el.textContent, ...box(el)]),
  };
}""".replace("(FIND)", "(" + FIND_VIEW + ")")


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (a test skips without it, or fails on
    CI, where it must be installed)."""
    import pytest

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


def graph_url(url: str, **params: str) -> str:
    """The graph view's URL with its parameters encoded (a `+` in a uid stays a `+`)."""
    return f"{url}/graph?{urllib.parse.urlencode(params)}"


def open_graph_page(page, url: str, graph_uid: str, timeout_ms: int = 90_000, **params) -> float:
    """Load the graph view of `graph_uid`; seconds until the script is done and nodes are drawn."""
    start = time.perf_counter()
    page.goto(graph_url(url, graph=graph_uid, **params))
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_selector(NODE, timeout=timeout_ms)
    return time.perf_counter() - start


def node_center(page, node_id: str) -> tuple[float, float]:
    box = page.locator(f'{NODE}[data-id="{node_id}"]').bounding_box()
    if box is None:
        raise LookupError(f"node {node_id} is not drawn")
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def timed(page, attribute: str, expected: str, act, timeout_ms: int = 30_000) -> float:
    """Seconds from the input event `act()` causes until the view's `data-<attribute>` reads
    `expected` and the browser has painted it."""
    page.evaluate(ARM, [attribute, expected])
    act()
    page.wait_for_function("() => typeof window.__cmElapsed === 'number'", timeout=timeout_ms)
    return page.evaluate(ELAPSED) / 1000


def hover_node(page, node_id: str) -> float:
    """Move the mouse onto a node: seconds until its hover card is drawn."""
    page.mouse.move(5, 5)
    x, y = node_center(page, node_id)
    return timed(page, "hovered", node_id, lambda: page.mouse.move(x, y))


def click_node(page, node_id: str, modifiers: list[str] | None = None) -> tuple[str, float]:
    """Click a node: (the view's selection after it, seconds until it is drawn). Clicking the
    selected node clears the selection; with modifiers=["Shift"] the click pins instead."""
    x, y = node_center(page, node_id)
    page.mouse.move(x, y)
    before = page.evaluate(DRAWN)
    if modifiers:
        pinned = [p for p in before["pinned"] if p != node_id]
        expected = ",".join(pinned if node_id in before["pinned"] else [*pinned, node_id])
        attribute = "pinned"
    else:
        expected = "" if before["selected"] == node_id else node_id
        attribute = "selected"

    def act() -> None:
        for key in modifiers or []:
            page.keyboard.down(key)
        page.mouse.click(x, y)
        for key in modifiers or []:
            page.keyboard.up(key)

    seconds = timed(page, attribute, expected, act)
    return page.evaluate(DRAWN)["selected"], seconds


def drag_mouse(page, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
    """Press the left button at `start`, move to `end` in `steps`, release."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def pinned_nodes(page) -> dict[str, dict]:
    """The pinned subgraph's drawn nodes by id: label and transform (its position)."""
    rows = page.locator(PINNED_NODE).evaluate_all(
        """els => els.map(g => [g.dataset.id, g.querySelector('text').textContent,
                                g.getAttribute('transform')])"""
    )
    return {i: {"label": label, "transform": transform} for i, label, transform in rows}


def translation(transform: str) -> tuple[float, float]:
    """(x, y) of an SVG "translate(x,y)" attribute."""
    x, y = transform.removeprefix("translate(").rstrip(")").split(",")
    return float(x), float(y)


def wait_url(page, fragment: str, timeout_ms: int = 30_000) -> None:
    """Until the page's URL contains `fragment` (the component's state reached the URL)."""
    page.wait_for_function(
        "(f) => decodeURIComponent(location.search.replace(/[+]/g, ' ')).includes(f)",
        arg=fragment,
        timeout=timeout_ms,
    )
    page.wait_for_selector(IDLE, timeout=timeout_ms)
