"""Ingest benchmark: edges/s and graphs/s written into Neo4j for realistic graph sizes.

    .venv/bin/python -m bench.ingest                    # the default sizes, aggregates on and off
    .venv/bin/python -m bench.ingest --sizes 800x100000 --graphs 6 --writers 2
    .venv/bin/python -m bench.ingest --model DIR --transcoders DIR   # + end-to-end prompts/s
                                      (adds to that transcoder's feature aggregates: use a
                                       scratch database)

Graphs come from circuitmap.synthetic (computed before the clock starts), so the figures are the
writer's alone; the worker run overlaps computing and writing as `circuitmap ingest` does. Server
CPU seconds are read from /proc when the server is the local one, and the machine's load average
is printed, because on a shared 2-core box it moves the wall-clock figures a lot. Everything the
benchmark writes (model "bench-model", transcoder "bench-clt") is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from neo4j import Driver

from circuitmap.synthetic import SyntheticConfig, SyntheticGraphs, synthetic_prompts
from db.config import load_settings
from db.connection import database_name, get_driver
from db.schema import ensure_schema
from ingest.compute import Computer, InlineExecutor, pipeline_computer
from ingest.corpus import PromptRecord
from ingest.spec import GraphSpec
from ingest.worker import Worker
from ingest.writer import GraphWriter

MODEL, TRANSCODER, CORPUS = "bench-model", "bench-clt", "bench"


@dataclass
class Figures:
    label: str
    graphs: int
    edges: int
    seconds: float
    server_cpu: float | None

    def line(self) -> str:
        cpu = "" if self.server_cpu is None else f", server CPU {self.server_cpu:.1f} s"
        per_cpu = (
            f" ({self.edges / self.server_cpu:,.0f} edges per server CPU-s)"
            if self.server_cpu
            else ""
        )
        return (
            f"{self.label:<44} {self.edges / self.seconds:>9,.0f} edges/s "
            f"{self.graphs / self.seconds:>6.2f} graphs/s  [{self.seconds:.1f} s{cpu}]{per_cpu}"
        )


def server_cpu_seconds() -> float | None:
    """CPU time of the local server process, when it is local and ours to read."""
    settings = load_settings()
    if settings.external:
        return None
    try:
        pid = (settings.server_dir / "run" / "neo4j.pid").read_text().split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_graphs(n: int, n_features: int, n_edges: int, offset: int):
    graphs = SyntheticGraphs(
        MODEL, TRANSCODER, config=SyntheticConfig(n_features=n_features, n_edges=n_edges)
    )
    rows = synthetic_prompts(n, seed=offset)
    return [
        (PromptRecord.make(f"{r['text']} #{offset}-{i}", corpus=CORPUS), graphs(str(r["text"])))
        for i, r in enumerate(rows)
    ]


def write_all(writer: GraphWriter, items: list, threads: int) -> tuple[int, float]:
    """Write `items` with `threads` concurrent writers; returns (edges, seconds)."""
    shares = [items[k::threads] for k in range(threads)]
    done = [0] * threads

    def work(k: int) -> None:
        for prompt, graph in shares[k]:
            done[k] += writer.write_graph(prompt, graph).n_edges

    start = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done), time.perf_counter() - start


def bench_writer(driver: Driver, size: str, n: int, writers: int, agg: int, offset: int) -> Figures:
    n_features, n_edges = (int(x) for x in size.split("x"))
    items = make_graphs(n, n_features, n_edges, offset)
    writer = GraphWriter(driver, database_name(), aggregates=agg != 0, agg_pairs=agg)
    cpu0 = server_cpu_seconds()
    edges, seconds = write_all(writer, items, writers)
    cpu1 = server_cpu_seconds()
    label = f"{n_features} features/{n_edges:,} edges, agg {agg}, {writers} writer(s)"
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return Figures(label, len(items), edges, seconds, cpu)


def bench_worker(driver: Driver, computer: Computer, n: int, offset: int) -> Figures:
    prompts = [
        PromptRecord.make(f"{r['text']} #{offset}-{i}", corpus=CORPUS)
        for i, r in enumerate(synthetic_prompts(n, seed=offset))
    ]
    worker = Worker(driver, InlineExecutor(computer), database=database_name())
    cpu0 = server_cpu_seconds()
    summary = worker.run(prompts)
    cpu1 = server_cpu_seconds()
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    label = f"worker end to end ({computer.spec.model})"
    return Figures(label, summary.written, summary.edges, summary.seconds, cpu)


def clean_up(driver: Driver) -> None:
    """Delete the benchmark's prompts, graphs and catalog in small transactions."""
    steps = [
        "MATCH (:Prompt {corpus: $corpus})-[:HAS_GRAPH]->(:Graph)-[:HAS_NODE]->(n)"
        " CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 500 ROWS",
        "MATCH (f:Feature {transcoder_uid: $transcoder})-[r:AGG_ATTR]-()"
        " CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS",
        "MATCH (p:Prompt {corpus: $corpus})-[:HAS_GRAPH]->(g)"
        " CALL (g) { DETACH DELETE g } IN TRANSACTIONS OF 1000 ROWS",
        "MATCH (x) WHERE (x:Prompt AND x.corpus = $corpus)"
        " OR (x:Feature AND x.transcoder_uid = $transcoder) OR (x:Model AND x.uid = $model)"
        " OR (x:Transcoder AND x.uid = $transcoder)"
        " CALL (x) { DETACH DELETE x } IN TRANSACTIONS OF 1000 ROWS",
    ]
    with driver.session(database=database_name(), notifications_min_severity="OFF") as session:
        for step in steps:
            session.run(step, model=MODEL, transcoder=TRANSCODER, corpus=CORPUS).consume()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="300x10000,500x50000,800x100000")
    parser.add_argument("--graphs", type=int, default=8, help="graphs per size")
    parser.add_argument("--writers", default="1,2", help="concurrent writer threads to try")
    parser.add_argument("--agg", default="2000,0", help="AGG_ATTR pairs per graph to try")
    parser.add_argument("--model", help="model for the end-to-end run (else synthetic)")
    parser.add_argument("--transcoders", help="transcoders for the end-to-end run")
    parser.add_argument("--keep", action="store_true", help="keep what the benchmark wrote")
    args = parser.parse_args()

    with get_driver() as driver:
        ensure_schema(driver, database_name())
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        offset = int(time.time())
        warm = make_graphs(2, 100, 2000, offset - 1)
        write_all(GraphWriter(driver, database_name()), warm, 1)  # plans cached, JIT warm
        try:
            for size in args.sizes.split(","):
                for agg in (int(a) for a in args.agg.split(",")):
                    for writers in (int(w) for w in args.writers.split(",")):
                        offset += 1
                        figures = bench_writer(driver, size, args.graphs, writers, agg, offset)
                        print(figures.line(), flush=True)
            offset += 1
            synthetic = SyntheticGraphs(
                MODEL, TRANSCODER, config=SyntheticConfig(n_features=500, n_edges=50_000)
            )
            spec = GraphSpec(MODEL, TRANSCODER, synthetic.settings)
            print(bench_worker(driver, Computer(synthetic, spec), args.graphs, offset).line())
            if args.model and args.transcoders:
                computer = pipeline_computer(args.model, args.transcoders, {})
                print(bench_worker(driver, computer, args.graphs, offset + 1).line())
        finally:
            if not args.keep:
                clean_up(driver)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (writer + worker): {peak:.0f} MiB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
