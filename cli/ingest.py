"""`circuitmap ingest CORPUS` (compute and store every prompt's graph) and `circuitmap import`."""

from __future__ import annotations

import json
import logging
import signal
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cli.connect import connected, fail

if TYPE_CHECKING:
    from db.connection import Neo4jHandle
    from ingest.worker import RunSummary

console = Console()
errors = Console(stderr=True)
#: Feature nodes per graph unless `--set max_feature_nodes=...` says otherwise (null: no cap).
DEFAULT_MAX_FEATURE_NODES = 7500


class IngestExit(IntEnum):
    """`circuitmap ingest`'s exit statuses (README, "Ingesting a corpus"; and --help)."""

    OK = 0  # every prompt of the corpus has a complete graph
    ERROR = 1  # the run could not start or was stopped (interrupted, Neo4j gone for too long)
    USAGE = 2  # a bad option (typer's own status)
    MALFORMED = 3  # some corpus lines were malformed and skipped; every prompt read is complete
    FAILED = 4  # some prompts failed (this run or before, not retried); no malformed lines
    MALFORMED_AND_FAILED = 5  # both


def exit_status(summary: RunSummary, malformed: int) -> IngestExit:
    failed = summary.failed + summary.already_failed
    if malformed and failed:
        return IngestExit.MALFORMED_AND_FAILED
    if malformed:
        return IngestExit.MALFORMED
    return IngestExit.FAILED if failed else IngestExit.OK


def quiet_driver_logs() -> None:
    """The driver logs each retry and refused connection while Neo4j is away (tens of lines a
    minute); the worker's own "waiting for Neo4j" lines say the same once per attempt."""
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)


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
    """Compute and store the attribution graph of every prompt in CORPUS (resumable).

    Exit status:
    0 every prompt has a complete graph;
    3 some lines were malformed (skipped, listed with their line numbers);
    4 some prompts failed (stored with their error; --retry-failed tries again);
    5 both 3 and 4;
    1 the run could not start or was stopped; 2 a bad option.
    """
    quiet_driver_logs()
    from db.connection import neo4j_uri
    from ingest.compute import ComputeRecipe, InlineExecutor, ProcessExecutor, RayExecutor
    from ingest.corpus import Corpus
    from ingest.progress import RichReporter, print_summary
    from ingest.run import run_ingest
    from ingest.worker import WorkerOptions

    try:
        prompts = Corpus(corpus, corpus_format, corpus_name)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if compute == "pipeline":  # the demo model and CLT when neither is given (cli.trace's hook)
        from cli.trace import demo_paths

        default_model, default_transcoders = demo_paths()
        model, transcoders = model or default_model, transcoders or default_transcoders
    settings = _settings(setting or [])
    if compute == "pipeline":  # circuit-tracer's CLI default: long prompts stay bounded
        settings.setdefault("max_feature_nodes", DEFAULT_MAX_FEATURE_NODES)
    recipe = ComputeRecipe(compute, model, transcoders, settings)
    _interrupt_on_sigterm()
    # No connectivity check: a worker may start before Neo4j and waits for it with backoff.
    # Notifications off: the end-of-run supernode refresh may name a label no graph has yet.
    with connected(
        verify=False, max_transaction_retry_time=5.0, notifications_min_severity="OFF"
    ) as handle:
        where = f"Neo4j at {neo4j_uri()}"
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
        options = WorkerOptions(retry_failed=retry_failed, lease_s=lease)
        options.batch_graphs = graphs_per_tx or options.batch_graphs
        reporter = RichReporter(console, prompts.count_lines(), prompts.name)

        def lines_without_prompt(n: int) -> None:  # the bar counts lines: it ends at the total
            reporter.progress.update(reporter.task, advance=n)

        with reporter:
            outcome = run_ingest(
                handle,
                executor,
                prompts.with_line_progress(lines_without_prompt),
                options=options,
                agg_pairs=agg_pairs,
                reporter=reporter,
                where=where,
                corpus=prompts,
            )
        summary = outcome.summary
        if outcome.interrupted:
            print_summary(console, summary, prompts.errors)
            fail("interrupted; run the same command again to resume")
        print_summary(console, summary, prompts.errors)
        refresh_supernodes(handle)
    status = exit_status(summary, len(prompts.errors))
    if status != IngestExit.OK:
        raise typer.Exit(status)


def refresh_supernodes(handle: Neo4jHandle) -> None:
    """Re-evaluate the query-defined supernodes after a run, so they see the new graphs."""
    from queries.supernodes import refresh_all_supernodes

    refreshed = refresh_all_supernodes(handle)
    if refreshed:
        console.print(f"refreshed {len(refreshed)} query-defined supernodes")


def import_graphs(
    files: Annotated[list[Path], typer.Argument(help="Graph JSON files (Neuronpedia schema).")],
    corpus_name: Annotated[str, typer.Option(help="Corpus name stored on prompts.")] = "imported",
) -> None:
    """Import graph JSON files (circuit-tracer / Neuronpedia schema) beside computed graphs."""
    from db.schema import ensure_schema
    from ingest.importer import import_files
    from ingest.progress import RichReporter
    from ingest.writer import GraphWriter

    with connected() as handle:
        ensure_schema(handle)
        writer = GraphWriter(handle)
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
