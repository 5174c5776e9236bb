"""Ingest benchmark: edges/s and graphs/s into Neo4j, and end-to-end prompts/s on the demo model.

    .venv/bin/python -m bench.ingest                    # writer at ~10k and ~100k edges per graph,
                                                        # the synthetic worker, the demo worker
    .venv/bin/python -m bench.ingest --sizes 800x100000 --edges 500000 --writers 2
    .venv/bin/python -m bench.ingest --writer-only --sizes 12x470,500x6000,1500x350000 \
        --edges 350000 --writers 1 --batch 16    # demo-sized, real-sized and a large export
    .venv/bin/python -m bench.ingest --model DIR --transcoders DIR   # another model end to end
                                      (adds to that transcoder's feature aggregates: use a
                                       scratch database)

Graphs for the writer figures come from circuitmap.synthetic (computed before the clock starts), so
those figures are the writer's alone. Each size writes `--edges` edges' worth of graphs while a
folding thread folds their contributions into the corpus aggregates, as the worker does
(ingest.aggregate), and the clock runs until the last one is folded: the sustained rate. The line
also gives the rate of writing alone. The worker runs (synthetic graphs, then the demo model when
its artefacts are built, see circuitmap.demo.stages.built_demo) overlap computing and writing as
`circuitmap ingest` does; each runs in a child process so that its peak RSS is the worker's own,
and prints the share of the run spent computing and spent writing and folding (the writer thread
is the bottleneck when its share is near 100%). Server CPU seconds are read from /proc when the
server is the local one, and the load average is printed, because on a shared 2-core box it moves
the wall-clock figures a lot: compare runs made back to back. Everything the benchmark writes
(corpus "bench", model "bench-model", transcoder "bench-clt") is deleted at the end; demo graphs
leave their additions to the demo transcoder's feature aggregates.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from circuitmap.synthetic import SyntheticConfig, SyntheticGraphs, synthetic_prompts
from db.config import load_settings
from db.connection import Neo4jHandle, open_handle
from db.schema import ensure_schema
from ingest.aggregate import Aggregator, BackgroundFolder
from ingest.compute import Computer, ComputeRecipe, InlineExecutor
from ingest.corpus import Corpus, PromptRecord
from ingest.run import run_ingest
from ingest.worker import WorkerOptions
from ingest.writer import GraphWriter

MODEL, TRANSCODER, CORPUS = "bench-model", "bench-clt", "bench"


@dataclass
class Figures:
    """Writing the graphs, then folding them into the corpus aggregates, as the worker does."""

    label: str
    graphs: int
    edges: int
    seconds: float  # until the last graph is written
    total_seconds: float  # until the last graph is folded
    fold_seconds: float  # spent folding, beside writing
    server_cpu: float | None  # both

    def line(self) -> str:
        total = self.total_seconds
        cpu = "" if self.server_cpu is None else f", server CPU {self.server_cpu:.1f} s"
        per_cpu = (
            f" ({self.edges / self.server_cpu:,.0f} edges per server CPU-s)"
            if self.server_cpu
            else ""
        )
        return (
            f"{self.label:<40} {self.edges / total:>9,.0f} edges/s "
            f"{self.graphs / total:>6.2f} graphs/s, aggregates folded  [{self.graphs} graphs; "
            f"written in {self.seconds:.1f} s ({self.edges / self.seconds:,.0f} edges/s), "
            f"all folded at {total:.1f} s, folding {self.fold_seconds:.1f} s{cpu}]{per_cpu}"
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


def transactions(items: list, batch: int) -> list[list]:
    """`items` cut into transactions as the worker cuts what waits for it: at most `batch`
    graphs, and no graph joins once a transaction holds `WorkerOptions.batch_edges` edges."""
    options, out = WorkerOptions(batch_graphs=batch), []
    for item in items:
        if out and options.joins_batch(len(out[-1]), sum(g.n_edges for _, g in out[-1])):
            out[-1].append(item)
        else:
            out.append([item])
    return out


def write_all(
    writer: GraphWriter, items: list, threads: int, batch: int = 1, folder=None
) -> tuple[int, float]:
    """Write `items` with `threads` concurrent writers, up to `batch` graphs per transaction
    (payloads built on the clock, as the worker does), asking `folder` (a BackgroundFolder) for a
    fold every `WorkerOptions.fold_every` graphs as the worker does; returns (edges, seconds)."""
    shares = [transactions(items[k::threads], batch) for k in range(threads)]
    done, graphs, every = [0] * threads, [0], WorkerOptions().fold_every

    def work(k: int) -> None:
        for chunk in shares[k]:
            results = writer.write([writer.payload(prompt, graph) for prompt, graph in chunk])
            done[k] += sum(result.n_edges for result in results)
            graphs[0] += len(chunk)
            if folder is not None and graphs[0] // every > (graphs[0] - len(chunk)) // every:
                folder.request()

    start = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done), time.perf_counter() - start


def bench_writer(
    handle: Neo4jHandle, size: str, budget: int, writers: int, agg: int, batch: int, offset: int
) -> Figures:
    """Graphs of `size` worth `budget` edges, written while a folding thread folds them in, as
    the worker does; the clock stops when the last one is folded."""
    n_features, n_edges = (int(x) for x in size.split("x"))
    items = make_graphs(max(budget // n_edges, 2), n_features, n_edges, offset)
    writer = GraphWriter(handle, agg_pairs=agg)
    cpu0 = server_cpu_seconds()
    start = time.perf_counter()
    folder = BackgroundFolder(Aggregator(handle)).start()
    edges, seconds = write_all(writer, items, writers, batch, folder)
    folded = folder.finish()
    total = time.perf_counter() - start
    cpu1 = server_cpu_seconds()
    per_tx = max(len(t) for t in transactions(items, batch))
    nodes = sum(len(graph.nodes) for _, graph in items) / len(items)
    label = f"{nodes:.0f} nodes/{n_edges:,}, pairs {agg}, {writers} writer(s), {per_tx}/tx"
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return Figures(label, len(items), edges, seconds, total, folded.seconds, cpu)


@dataclass
class WorkerFigures:
    """One end-to-end worker run, measured inside the child process that ran it."""

    label: str
    prompts: int
    edges: int
    seconds: float
    compute_seconds: float
    write_seconds: float
    fold_seconds: float
    peak_rss_mib: float
    server_cpu: float | None = None

    def line(self) -> str:
        cpu = "" if self.server_cpu is None else f", server CPU {self.server_cpu:.1f} s"
        return (
            f"{self.label:<44} {self.prompts / self.seconds:>6.2f} prompts/s "
            f"{self.edges / self.seconds:>9,.0f} edges/s  computing {self.compute_seconds:.1f} s"
            f" ({self.compute_seconds / self.seconds:.0%}), writing {self.write_seconds:.1f} s"
            f" ({self.write_seconds / self.seconds:.0%}), folding beside it"
            f" {self.fold_seconds:.1f} s, of {self.seconds:.1f} s{cpu};"
            f" worker peak RSS {self.peak_rss_mib:.0f} MiB"
        )


def run_worker(
    recipe: ComputeRecipe, texts: list[str], label: str, batch: int, run: int
) -> WorkerFigures:
    """In a child process: build the computer, ingest `texts` (prompt ids unique to `run`),
    up to `batch` graphs per transaction; time computing and writing."""
    if recipe.factory == "pipeline":
        import torch

        torch.set_num_threads(1)  # leave the other core to Neo4j and the writer
    computer = recipe.build()
    computing = [0.0]

    def timed(text: str):
        start = time.perf_counter()
        try:
            return computer.compute(text)
        finally:
            computing[0] += time.perf_counter() - start

    prompts = [
        PromptRecord.make(text, uid=f"bench-{run}-{i}", corpus=CORPUS)
        for i, text in enumerate(texts)
    ]
    options = WorkerOptions(batch_graphs=batch)
    with open_handle() as handle:
        executor = InlineExecutor(Computer(timed, computer.spec))
        summary = run_ingest(handle, executor, prompts, options=options).summary
    return WorkerFigures(
        label,
        summary.written,
        summary.edges,
        summary.seconds,
        computing[0],
        summary.write_seconds,
        summary.fold_seconds,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def bench_worker(
    recipe: ComputeRecipe, texts: list[str], label: str, batch: int, run: int
) -> WorkerFigures:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        cpu0 = server_cpu_seconds()
        figures = pool.submit(
            run_worker, recipe, texts, f"{label}, {batch}/tx", batch, run
        ).result()
        cpu1 = server_cpu_seconds()
    figures.server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return figures


def demo_recipe(model: str | None, transcoders: str | None) -> tuple[ComputeRecipe, list[str]]:
    """The model to run end to end (the built demo unless given) and its prompts."""
    from circuitmap.demo.stages import built_demo  # imports torch: not in the synthetic worker
    from circuitmap.demo.train import DEMO_PROMPTS_FILE

    if model and transcoders:
        return ComputeRecipe("pipeline", model, transcoders), []
    demo = built_demo(load_settings().home / "demo") or built_demo()
    if demo is None:
        return ComputeRecipe("pipeline"), []
    corpus = Corpus(demo.model_dir / DEMO_PROMPTS_FILE)
    recipe = ComputeRecipe("pipeline", str(demo.model_dir), str(demo.clt_dir))
    return recipe, [prompt.text for prompt in corpus]


def clean_up(handle: Neo4jHandle) -> None:
    """Delete the benchmark's prompts, graphs and catalog in small transactions."""
    steps = [
        "MATCH (:Prompt {corpus: $corpus})-[:HAS_GRAPH]->(g:Graph)"
        " MATCH (p:PendingAggregate {graph_uid: g.uid}) DELETE p",
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
    with handle.session() as session:
        for step in steps:
            session.run(step, model=MODEL, transcoder=TRANSCODER, corpus=CORPUS).consume()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="300x10000,800x100000", help="features x edges, ...")
    parser.add_argument(
        "--edges", type=int, default=2_000_000, help="edges written per size (sustained)"
    )
    parser.add_argument("--writers", default="1,2", help="concurrent writer threads to try")
    parser.add_argument("--agg", default="2000", help="AGG_ATTR pairs per graph to try (0: none)")
    parser.add_argument("--batch", default="1,16", help="most graphs per transaction to try")
    parser.add_argument("--prompts", type=int, default=24, help="prompts per synthetic worker run")
    parser.add_argument("--demo-prompts", type=int, default=120, help="prompts per demo run")
    parser.add_argument("--model", help="model for the end-to-end run (else the built demo)")
    parser.add_argument("--transcoders", help="transcoders for the end-to-end run")
    parser.add_argument("--keep", action="store_true", help="keep what the benchmark wrote")
    parser.add_argument("--writer-only", action="store_true", help="no end-to-end worker runs")
    args = parser.parse_args()

    with open_handle() as handle:
        ensure_schema(handle)
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        offset = int(time.time())
        # Plans cached and the server's JIT warm: a fresh server writes its first graphs 3x slower.
        warm = make_graphs(6, 300, 10_000, offset - 1)
        write_all(GraphWriter(handle), warm, 1)
        Aggregator(handle).fold_all()
        try:
            for size in args.sizes.split(","):
                for agg in (int(a) for a in args.agg.split(",")):
                    for writers in (int(w) for w in args.writers.split(",")):
                        for batch in (int(b) for b in args.batch.split(",")):
                            offset += 1
                            figures = bench_writer(
                                handle, size, args.edges, writers, agg, batch, offset
                            )
                            print(figures.line(), flush=True)
            if args.writer_only:
                return
            offset += 1
            settings = {"n_features": 500, "n_edges": 50_000}
            synthetic = ComputeRecipe("synthetic", MODEL, TRANSCODER, settings)
            texts = [
                f"{r['text']} #{offset}-{i}"
                for i, r in enumerate(synthetic_prompts(args.prompts, seed=offset))
            ]
            default_batch = WorkerOptions().batch_graphs
            label = "worker, synthetic 500/50,000"
            print(bench_worker(synthetic, texts, label, default_batch, offset).line(), flush=True)
            recipe, texts = demo_recipe(args.model, args.transcoders)
            if recipe.model is None:
                print("demo model not built (`make demo`): no end-to-end figure")
                return
            step = max(1, len(texts) // args.demo_prompts)  # every task of the demo corpus
            texts = texts[::step][: args.demo_prompts] or [r["text"] for r in synthetic_prompts(8)]
            label = f"worker, model {Path(recipe.model).name}"
            for batch in (1, default_batch):  # one graph per transaction, then the default
                offset += 1
                print(bench_worker(recipe, texts, label, batch, offset).line(), flush=True)
        finally:
            if not args.keep:
                clean_up(handle)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
