"""Screenshots of the dashboard for the README, taken from whatever database is configured
(after `make demo`, the demo's): the graph view of the first two-hop prompt (tag `two_hop`) with
its most influential feature selected and another's hover card open, and that feature's page.

    .venv/bin/python -m tests.screenshots [--out docs/images]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from db.connection import open_handle
from queries.runner import run_query
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    click_node,
    dashboard_server,
    hover_node,
    open_graph_page,
)

VIEWPORT = {"width": 1440, "height": 900}
TWO_HOP = "two_hop"  # the demo's tag for "the capital of the state containing <city> is"


def pick_graph() -> tuple[str, str]:
    """(graph uid, node id): a two-hop prompt's graph (any graph if none is tagged) and its most
    influential feature (smallest cumulative influence)."""
    with open_handle() as handle:
        graphs = run_query(handle, "graph_search", {"tag": TWO_HOP, "status": "complete"}).frame
        if graphs.empty:
            graphs = run_query(handle, "graph_search", {"status": "complete"}).frame
        if graphs.empty:
            raise SystemExit("no complete graph in the database: run `make demo` first")
        graph = str(graphs["graph_uid"].iloc[-1])  # the oldest: the corpus's first prompt
        nodes = run_query(handle, "graph_nodes", {"graph": graph}, row_cap=0).frame
    features = nodes[nodes["kind"] == "feature"].sort_values("influence")
    return graph, [str(n) for n in features["node_id"].iloc[:2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    graph, (node, hovered) = pick_graph()
    args.out.mkdir(parents=True, exist_ok=True)
    with dashboard_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        open_graph_page(page, url, graph)
        click_node(page, node)
        hover_node(page, hovered)
        page.wait_for_timeout(800)
        page.screenshot(path=str(args.out / "graph_view.png"), full_page=True)
        page.get_by_text("Feature page").click()
        page.wait_for_selector(IDLE, timeout=90_000)
        page.wait_for_selector("text=Top activating contexts", timeout=90_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(args.out / "feature_page.png"), full_page=True)
        browser.close()
    print(f"wrote {args.out / 'graph_view.png'} and {args.out / 'feature_page.png'}")


if __name__ == "__main__":
    main()
