"""Benchmark: how long the dashboard's graph view takes to render a pruned graph of ~2,000 nodes.

Writes (once; the writer skips it afterwards) a synthetic graph of realistic shape with
--features feature nodes and --edges edges into the configured Neo4j, then prints:
- server: the graph page's script run (AppTest), first run (database reads) and later runs
  (cached graph) with a node selected;
- figure: building the chart's Plotly figure (layout, traces) with a node selected, and the size
  of the JSON spec the browser receives (what `st.plotly_chart` sends);
- browser: in Debian's Chromium against `circuitmap dashboard`: a page load until the nodes are
  drawn, and a click on a node until the chart shows it selected with its edges.
Medians over --repeat runs. The machine's load average is printed with the figures, because on a
shared machine it moves them most.

    .venv/bin/python -m bench.dashboard [--features 1950] [--edges 40000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import plotly.io

from app.data.graphs import load_graph
from app.graphview.figure import ViewMarks, graph_figure
from app.graphview.layout import layout
from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from db.connection import database_name, get_driver
from db.schema import ensure_schema
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.app_fixtures import clear_app_caches, open_page
from tests.browser import CHROMIUM, CHROMIUM_ARGS, click_node, dashboard_server, open_graph_page

PROMPT = "the capital of the state containing dallas is"


def write_big_graph(n_features: int, n_edges: int) -> tuple[str, list[str], int]:
    """(graph uid, three busy feature node ids, node count) of the benchmark graph."""
    config = SyntheticConfig(n_features=n_features, n_edges=n_edges)
    record = synthetic_graph(PROMPT, config, answer="austin")
    with get_driver() as driver:
        ensure_schema(driver)
        prompt = PromptRecord(uid=f"bench-dashboard-{n_features}-{n_edges}", text=PROMPT)
        uid = GraphWriter(driver, database_name()).write_graph(prompt, record).graph_uid
    inputs = [t for t in record.edge_target.tolist() if record.nodes[t].kind == "feature"]
    busiest = sorted(set(inputs), key=inputs.count, reverse=True)[:3]
    return uid, [record.nodes[i].node_id for i in busiest], len(record.nodes)


def figure_cost(graph_uid: str, nodes: list[str], repeat: int) -> tuple[float, float]:
    """(median seconds to lay out and build the figure, kB of its JSON spec)."""
    bundle = load_graph(graph_uid)
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        placed = layout(bundle.nodes, bundle.n_layers)
        marks = ViewMarks(nodes[i % len(nodes)])
        fig = graph_figure(placed, bundle.edges, bundle.n_layers, bundle.tokens, marks)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(plotly.io.to_json(fig, validate=False)) / 1e3


def server_times(graph_uid: str, nodes: list[str], repeat: int) -> tuple[float, float]:
    clear_app_caches()
    start = time.perf_counter()
    open_page("views/graph.py", graph=graph_uid)
    first = time.perf_counter() - start
    later = []
    for i in range(repeat):
        start = time.perf_counter()
        at = open_page("views/graph.py", graph=graph_uid, sel=nodes[i % len(nodes)])
        later.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
    return first, statistics.median(later)


def browser_times(graph_uid: str, nodes: list[str], repeat: int) -> tuple[float, float, float]:
    from playwright.sync_api import sync_playwright

    with dashboard_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        first = open_graph_page(page, url, graph_uid)  # cold: the server reads the graph
        loads = [open_graph_page(page, url, graph_uid) for _ in range(repeat)]
        clicks = [click_node(page, nodes[i % len(nodes)])[1] for i in range(repeat)]
        browser.close()
    return first, statistics.median(loads), statistics.median(clicks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=1950)
    parser.add_argument("--edges", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    uid, busy, n_nodes = write_big_graph(args.features, args.edges)
    print(f"graph {uid}: {n_nodes:,} nodes, {args.edges:,} edges")
    first, later = server_times(uid, busy, args.repeat)
    print(f"server  first run {first:.2f} s   later runs (node selected) {later:.2f} s")
    build, spec_kb = figure_cost(uid, busy, args.repeat)
    print(f"figure  build {build * 1000:.0f} ms   spec {spec_kb:,.0f} kB")
    if CHROMIUM.exists():
        cold, load, click = browser_times(uid, busy, args.repeat)
        print(f"browser cold load {cold:.2f} s   page load {load:.2f} s", end="   ")
        print(f"click to selection {click:.2f} s")
    else:
        print("browser skipped: /usr/bin/chromium is missing")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
