"""`circuitmap demo ...`: build the demo world's artefacts (cached under $CIRCUITMAP_HOME/demo).

`circuitmap demo` alone (what `make demo` runs) does everything: builds what is missing (model,
CLT, feature catalogue, circuit checks), starts Neo4j unless NEO4J_URI names one, writes the
catalogue and the graph of every demo prompt, and says where to look next.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="The demo world: a small model trained here on a synthetic corpus, its CLT, and the "
    "attribution graphs of its demo prompts in Neo4j. Without a command: build and store it all.",
)
console = Console()


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="torch threads for the demo's graphs (training always uses one, so"
            " the artefacts are the same on every machine).",
        ),
    ] = 1,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Store only the first N demo prompts (the checks cover all)."),
    ] = None,
) -> None:
    """Build the demo (cached), store its catalogue and graphs in Neo4j, print the results."""
    if ctx.invoked_subcommand is not None:
        return
    from circuitmap.demo.stages import build_demo

    start = time.perf_counter()
    build = build_demo(threads=threads, progress=True, log=lambda m: console.print(f"[bold]{m}"))
    cached = ", ".join(s for s in ("model", "clt", "catalogue", "checks") if s not in build.built)
    console.print(f"artefacts under {build.model_dir.parent} (cached: {cached or 'none'})")
    _print_results(build)
    _store(build, limit)
    console.print(f"demo ready in {time.perf_counter() - start:.0f} s")
    _print_next_steps()


def _print_results(build) -> None:
    from circuitmap.demo.clt import clt_report

    training = json.loads((build.model_dir / "training.json").read_text())
    table = Table(title="demo model: greedy accuracy", show_header=True)
    for column in ("kind/split", "accuracy", "correct"):
        table.add_column(column)
    for key, acc in training["accuracy"].items():
        table.add_row(key, f"{acc['value']:.1%}", f"{acc['correct']}/{acc['total']}")
    console.print(table)
    clt = clt_report(build.clt_dir)
    layers = "  ".join(f"L{m['layer']}: {m['nmse']:.3f} / {m['l0']:.0f}" for m in clt["layers"])
    console.print(
        f"CLT {build.clt_dir.name}: NMSE {clt['nmse']:.4f}, L0 {clt['l0']:.1f} per layer "
        f"(NMSE / L0 by layer: {layers})"
    )
    checks = build.checks()
    table = Table(title="demo prompts: graphs (unpruned scores)")
    for column in ("task", "prompts", "replacement", "completeness"):
        table.add_column(column)
    for task, row in checks["scores"].items():
        table.add_row(
            task, str(row["n"]), f"{row['replacement']:.3f}", f"{row['completeness']:.3f}"
        )
    console.print(table)
    table = Table(title="circuit checks (circuitmap/demo/circuits.py): share of prompts passing")
    for column in ("task", "split", "prompts", "answered", "checks"):
        table.add_column(column)
    for task in ("two_hop", "addition"):
        for split, row in checks[task].items():
            parts = "  ".join(
                f"{k.replace('_', ' ')} {v:.0%}"
                for k, v in row.items()
                if k not in ("n", "correct")
            )
            table.add_row(task, split, str(row["n"]), f"{row['correct']:.0%}", parts)
    console.print(table)
    c = checks["concepts"]
    console.print(
        f"concept features: {c['state_features']} for states ({c['states_covered']} states, "
        f"{c['say_capital_features']} of them say-capital), {c['units_features']} for units "
        f"digits ({c['digits_covered']} digits), {c['sum_features']} for sums "
        f"({c['sums_covered']} sums)"
    )


def _store(build, limit: int | None) -> None:
    """Neo4j (started if local and stopped), the catalogue, then the demo prompts' graphs."""
    from circuitmap.demo.catalogue import label_features
    from circuitmap.pipeline import GraphBuilder, GraphSettings
    from cli.connect import connected, fail
    from cli.ingest import refresh_supernodes
    from db import server
    from db.config import load_settings
    from db.connection import neo4j_uri
    from db.jars import DbError
    from db.schema import ensure_schema
    from ingest.catalog import transcoder_info, write_catalogue
    from ingest.compute import Computer, InlineExecutor
    from ingest.corpus import Corpus
    from ingest.progress import RichReporter, print_summary
    from ingest.run import run_ingest
    from ingest.spec import GraphSpec

    try:
        settings = load_settings()
        with console.status("Neo4j: checking") as spinner:
            status = server.start(settings, progress=lambda m: spinner.update(f"Neo4j: {m}"))
    except (DbError, ValueError) as error:
        fail(str(error))
    if not status.running:
        fail(f"Neo4j at {status.uri} is {status.state} {status.detail}".strip())
    with connected(notifications_min_severity="OFF") as handle:
        ensure_schema(handle)
        graph_settings = GraphSettings()
        builder = GraphBuilder.from_paths(str(build.model_dir), str(build.clt_dir), graph_settings)
        info = transcoder_info(builder)
        cards = build.cards()
        with console.status("writing the feature catalogue"):
            n = write_catalogue(handle, info, cards)
        console.print(f"catalogue: {n:,} features of {info.uid} at {neo4j_uri()}")
        spec = GraphSpec(builder.model_name, builder.transcoder_name, graph_settings.to_dict())

        def compute(text: str):
            return label_features(build.graphs.get(text) or builder.build(text), cards)

        corpus = Corpus(build.prompts_file, name="demo")
        total = corpus.count_lines() if limit is None else min(limit, corpus.count_lines())
        reporter = RichReporter(console, total, "demo prompts")
        executor = InlineExecutor(Computer(compute, spec))
        with reporter:
            outcome = run_ingest(
                handle,
                executor,
                itertools.islice(corpus, limit),
                reporter=reporter,
                corpus=corpus,
            )
        print_summary(console, outcome.summary, corpus.errors)
        if outcome.interrupted:
            fail("interrupted; run `circuitmap demo` again to resume")
        refresh_supernodes(handle)


def _print_next_steps() -> None:
    console.print(
        "\n[bold]Next:[/]\n"
        "  circuitmap dashboard                       browse graphs, features and supernodes\n"
        "  circuitmap query run answer_path_features -p tag=two_hop\n"
        "                                             features on the paths to the answer\n"
        '  circuitmap trace "the capital of the state containing dallas is"\n'
        "                                             one graph, computed on the spot"
    )


@app.command("build-model")
def build_model(
    rebuild: bool = typer.Option(False, help="Train again even if a cached model exists."),
) -> None:
    """Train the demo model (or reuse the cached one) and print its per-task accuracy."""
    from circuitmap.demo.artifacts import build_demo_model, demo_model_dir, is_built

    cached = is_built(demo_model_dir()) and not rebuild
    path = build_demo_model(rebuild=rebuild)
    report = json.loads((path / "training.json").read_text())
    console.print(f"demo model {'(cached) ' if cached else ''}at {path}")
    console.print(f"trained in {report['seconds']:.0f} s on {report['threads']} thread(s)")
    for key, acc in report["accuracy"].items():
        console.print(f"  {key:20s} {acc['value']:7.1%}  ({acc['correct']}/{acc['total']})")
