"""`circuitmap ingest CORPUS` (compute and store every prompt's graph) and `circuitmap import`."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cli.connect import connected, fail

if TYPE_CHECKING:
    from neo4j import Driver

console = Console()
errors = Console(stderr=True)


def _settings(pairs: list[str]) -> dict[str, object]:
    """`key=value` options; values are JSON when they parse as JSON (numbers, null), else text."""
    settings: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set wants key=value, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def _interrupt_on_sigterm() -> None:
    """SIGTERM stops the run like Ctrl-C: claims of unwritten prompts are given back."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def ingest(
    corpus: Annotated[Path, typer.Argument(help="Prompts: .txt (one per line), .jsonl or .csv.")],
    model: Annotated[str | None, typer.Option(help="Model directory or hub name.")] = None,
    transcoders: Annotated[str | None, typer.Option(help="Transcoder directory.")] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="Graph setting key=value (e.g. node_threshold=0.8)."),
    ] = None,
    compute: Annotated[
        str, typer.Option(help="Graph computation: pipeline, synthetic, or module:function.")
    ] = "pipeline",
    workers: Annotated[int, typer.Option(min=1, help="Computing processes (or Ray actors).")] = 1,
    ray: Annotated[
        str | None,
        typer.Option("--ray", help="Compute as Ray tasks on this cluster ('local' starts one)."),
    ] = None,
    gpus_per_worker: Annotated[float, typer.Option(help="GPUs per Ray actor.")] = 0.0,
    retry_failed: Annotated[bool, typer.Option(help="Compute failed prompts again.")] = False,
    corpus_format: Annotated[
        str | None, typer.Option("--format", help="text, jsonl or csv (default: by extension).")
    ] = None,
    corpus_name: Annotated[str | None, typer.Option(help="Corpus name (file stem).")] = None,
    lease: Annotated[float, typer.Option(help="Seconds a claim lasts unrenewed.")] = 120.0,
    agg_pairs: Annotated[
        int,
        typer.Option(help="Strongest feature pairs per graph added to AGG_ATTR (-1 all, 0 none)."),
    ] = 2000,
    graphs_per_tx: Annotated[
        int | None,
        typer.Option(min=1, help="Most waiting graphs written in one transaction (default 16)."),
    ] = None,
) -> None:
    """Compute and store the attribution graph of every prompt in CORPUS (resumable)."""
    from db.connection import database_name, neo4j_uri
    from db.schema import ensure_schema
    from ingest.compute import ComputeRecipe, InlineExecutor, ProcessExecutor, RayExecutor
    from ingest.corpus import Corpus
    from ingest.progress import RichReporter, print_summary
    from ingest.worker import Worker, WorkerOptions, with_backoff
    from ingest.writer import GraphWriter

    try:
        prompts = Corpus(corpus, corpus_format, corpus_name)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if compute == "pipeline":  # the demo model and CLT when neither is given (cli.trace's hook)
        from cli.trace import demo_paths

        default_model, default_transcoders = demo_paths()
        model, transcoders = model or default_model, transcoders or default_transcoders
    recipe = ComputeRecipe(compute, model, transcoders, _settings(setting or []))
    _interrupt_on_sigterm()
    # No connectivity check: a worker may start before Neo4j and waits for it with backoff.
    # Notifications off: the end-of-run supernode refresh may name a label no graph has yet.
    with connected(
        verify=False, max_transaction_retry_time=5.0, notifications_min_severity="OFF"
    ) as driver:
        where = f"Neo4j at {neo4j_uri()}"
        with_backoff(
            lambda: ensure_schema(driver, database_name()), "check the schema", where=where
        )
        with console.status("loading the graph computation"):
            try:
                if ray:
                    executor = RayExecutor(recipe, ray, workers, gpus_per_worker)
                elif workers > 1:
                    executor = ProcessExecutor(recipe, workers)
                else:
                    executor = InlineExecutor(recipe)
            except (ValueError, OSError, ImportError) as error:
                fail(f"cannot load the graph computation: {error}")
        writer = GraphWriter(driver, database_name(), agg_pairs=agg_pairs)
        options = WorkerOptions(retry_failed=retry_failed, lease_s=lease)
        options.batch_graphs = graphs_per_tx or options.batch_graphs
        reporter = RichReporter(console, prompts.count_lines(), prompts.name)
        worker = Worker(
            driver,
            executor,
            database=database_name(),
            options=options,
            writer=writer,
            reporter=reporter,
            where=where,
        )
        try:
            with reporter:
                summary = worker.run(prompts)
        except KeyboardInterrupt:
            print_summary(console, worker.summary, prompts.errors)
            fail("interrupted; run the same command again to resume")
        finally:
            executor.close()
        print_summary(console, summary, prompts.errors)
        refresh_supernodes(driver)


def refresh_supernodes(driver: Driver) -> None:
    """Re-evaluate the query-defined supernodes after a run, so they see the new graphs."""
    from queries.supernodes import refresh_all_supernodes

    refreshed = refresh_all_supernodes(driver)
    if refreshed:
        console.print(f"refreshed {len(refreshed)} query-defined supernodes")


def import_graphs(
    files: Annotated[list[Path], typer.Argument(help="Graph JSON files (Neuronpedia schema).")],
    corpus_name: Annotated[str, typer.Option(help="Corpus name stored on prompts.")] = "imported",
) -> None:
    """Import graph JSON files (circuit-tracer / Neuronpedia schema) beside computed graphs."""
    from db.connection import database_name
    from db.schema import ensure_schema
    from ingest.importer import import_files
    from ingest.progress import RichReporter
    from ingest.writer import GraphWriter

    with connected() as driver:
        ensure_schema(driver, database_name())
        writer = GraphWriter(driver, database_name())
        with RichReporter(console, len(files), "import") as reporter:
            summary = import_files(files, writer, corpus_name, reporter)
    console.print(
        f"imported {summary.written} graphs ({summary.nodes:,} nodes, {summary.edges:,} edges), "
        f"{summary.skipped} already present, {len(summary.errors)} unreadable, "
        f"{summary.seconds:.1f} s"
    )
    for error in summary.errors:
        errors.print(f"[red]unreadable[/] {error}", highlight=False, soft_wrap=True)
    if summary.errors:
        raise typer.Exit(1)
