"""Benchmark: how fast the dashboard's graph view answers in the browser, on real-sized graphs.

Writes (once; the writer skips them afterwards) synthetic graphs of realistic shape into the
configured Neo4j: by default one of ~700 nodes and 9,000 edges (a pruned real graph) and one of
~1,500 nodes and 350,000 edges (an unpruned one). For each, against `circuitmap dashboard` in
Debian's Chromium (1280x800), it prints medians over --repeat runs of:
- page load: cold (the server reads the graph) and warm (a fresh tab of the same browser, the
  graph cached on the server), until the graph component has drawn its nodes; and, for scale,
  the warm load of the same page with no graph chosen (Streamlit's page and sidebar alone);
- hover: from the mouse move onto a node until its hover card is painted;
- click to selection: from the click until the node is drawn selected with its edges (in the
  page, no server round trip);
- state to URL: from the click until the selection is in the URL and the page script is done
  (the round trip that persists it, off the interaction's path).
Timings inside the page run from the input event's timestamp to the second animation frame after
the change (the frame that shows it). The machine's load average is printed with the figures.

    .venv/bin/python -m bench.dashboard [--sizes 700:9000,1500:350000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from circuitmap.records import GraphRecord
from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from db.connection import open_handle
from db.schema import ensure_schema
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DRAWN,
    IDLE,
    click_node,
    dashboard_server,
    hover_node,
    open_graph_page,
    wait_url,
)

PROMPT = "the capital of the state containing dallas is"
VIEWPORT = {"width": 1280, "height": 800}


def sized_graph(n_nodes: int, n_edges: int) -> GraphRecord:
    """A synthetic graph with about `n_nodes` nodes (features make up what tokens, errors and
    logits leave) and `n_edges` edges."""
    config = SyntheticConfig(n_features=n_nodes, n_edges=n_edges)
    first = synthetic_graph(PROMPT, config, answer="austin")
    others = len(first.nodes) - sum(n.kind == "feature" for n in first.nodes)
    config = SyntheticConfig(n_features=max(1, n_nodes - others), n_edges=n_edges)
    return synthetic_graph(PROMPT, config, answer="austin")


def write_graph(record: GraphRecord, name: str) -> str:
    with open_handle() as handle:
        ensure_schema(handle)
        prompt = PromptRecord(uid=f"bench-dashboard-{name}", text=PROMPT)
        return GraphWriter(handle).write_graph(prompt, record).graph_uid


def busy_features(record: GraphRecord, n: int) -> list[str]:
    """The `n` feature nodes with the most edges (their selection draws the most)."""
    degree: dict[int, int] = {}
    for s, t in zip(record.edge_source.tolist(), record.edge_target.tolist(), strict=True):
        degree[s] = degree.get(s, 0) + 1
        degree[t] = degree.get(t, 0) + 1
    features = [i for i in degree if record.nodes[i].kind == "feature"]
    return [record.nodes[i].node_id for i in sorted(features, key=degree.get, reverse=True)[:n]]


def shell_load(context, url: str, repeat: int) -> float:
    """Median seconds to load the graph page with no graph chosen, in a fresh tab, until its
    script is done: what every warm load pays before the graph."""
    times = []
    for _ in range(repeat + 1):
        page = context.new_page()
        start = time.perf_counter()
        page.goto(f"{url}/graph")
        page.wait_for_selector(IDLE, timeout=90_000)
        page.get_by_text("Choose a graph").first.wait_for(timeout=90_000)
        times.append(time.perf_counter() - start)
        page.close()
    return statistics.median(times[1:])


def browser_times(context, url: str, uid: str, nodes: list[str], repeat: int) -> dict[str, float]:
    """One browser context (its cache warm after the first load), a fresh tab per repeat."""
    page = context.new_page()
    cold = open_graph_page(page, url, uid)
    page.close()
    loads, hovers, clicks, persists = [], [], [], []
    for i in range(repeat):
        page = context.new_page()
        loads.append(open_graph_page(page, url, uid))
        node = nodes[i % len(nodes)]
        hovers.append(hover_node(page, node))
        start = time.perf_counter()
        selected, seconds = click_node(page, node)
        assert selected == node and page.evaluate(DRAWN)["edges"] > 0, "selection not drawn"
        clicks.append(seconds)
        wait_url(page, f"sel={node}")
        persists.append(time.perf_counter() - start)
        page.close()
    return {
        "cold load": cold,
        "warm load": statistics.median(loads),
        "hover": statistics.median(hovers),
        "click to selection": statistics.median(clicks),
        "state to URL": statistics.median(persists),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="700:9000,1500:350000", help="nodes:edges,...")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit("/usr/bin/chromium is missing: `make system-deps` installs it")
    graphs = []
    for size in args.sizes.split(","):
        n_nodes, n_edges = (int(v) for v in size.split(":"))
        record = sized_graph(n_nodes, n_edges)
        start = time.perf_counter()
        uid = write_graph(record, f"{n_nodes}-{n_edges}")
        print(
            f"graph {uid}: {len(record.nodes):,} nodes, {len(record.edge_weight):,} edges "
            f"(ready in {time.perf_counter() - start:.1f} s)"
        )
        graphs.append((uid, record))
    from playwright.sync_api import sync_playwright

    with dashboard_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        shell = shell_load(context, url, args.repeat)
        for uid, record in graphs:
            times = browser_times(context, url, uid, busy_features(record, 3), args.repeat)
            print(f"{len(record.nodes):,} nodes / {len(record.edge_weight):,} edges:")
            for name, seconds in times.items():
                unit = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
                print(f"  {name:<20} {unit}")
        browser.close()
    print(f"page without a graph, warm load: {shell:.2f} s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
