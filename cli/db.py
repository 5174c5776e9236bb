"""`circuitmap db start | stop | status | init | migrate | aggregate`: the local Neo4j server (or a
report on NEO4J_URI's), the schema and the corpus aggregates."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from db import server
from db.config import Settings, load_settings
from db.jars import DbError, neo4j_version

app = typer.Typer(help="The Neo4j server: start, stop and check the local one.")
console = Console()
errors = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as error:
        errors.print(f"error: {error}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def start(
    timeout: float = typer.Option(300, help="Seconds to wait for Bolt to answer."),
) -> None:
    """Start the local Neo4j server (fetching its jars once) and wait until Bolt answers."""
    settings = _settings()
    if settings.external:
        console.print(f"NEO4J_URI is set: using [bold]{settings.uri}[/], nothing to start.")
        current = server.status(settings)
        _report(current, settings)
        if not current.running:
            raise typer.Exit(1)
        return
    began = time.monotonic()
    try:
        with console.status("Neo4j: checking") as spinner:

            def progress(message: str) -> None:
                spinner.update(f"Neo4j: {message}")
                if not console.is_terminal and not message.startswith("downloaded "):
                    console.print(f"Neo4j: {message}", highlight=False)  # logs get the steps

            result = server.start(settings, progress=progress, timeout=timeout)
    except DbError as error:
        errors.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"[green]Neo4j {neo4j_version()} running[/] at [bold]{result.uri}[/]"
        f" (pid {result.pid}, {time.monotonic() - began:.1f} s)"
    )


@app.command()
def stop() -> None:
    """Stop the local Neo4j server cleanly (SIGTERM, then SIGKILL if it hangs)."""
    settings = _settings()
    if settings.external:
        console.print(f"NEO4J_URI is set ({settings.uri}): that server is not ours to stop.")
        return
    stopped = server.stop(settings)
    console.print("[green]Neo4j stopped.[/]" if stopped else "Neo4j was not running.")


@app.command()
def status() -> None:
    """Say whether the server runs and answers on Bolt; exit status 1 when it does not."""
    settings = _settings()
    current = server.status(settings)
    _report(current, settings)
    if not current.running:
        raise typer.Exit(1)


def _report(current: server.Status, settings: Settings) -> None:
    colour = "green" if current.running else "yellow" if current.state == "starting" else "red"
    table = Table(show_header=False, box=None)
    table.add_row("state", f"[{colour}]{current.state}[/]")
    table.add_row("bolt", current.uri)
    if current.pid is not None:
        table.add_row("pid", str(current.pid))
    if not settings.external:
        layout = server.Layout(settings.server_dir)
        table.add_row("home", str(layout.root))
        table.add_row("log", str(layout.log_file))
    if current.detail:
        table.add_row("note", current.detail)
    console.print(table)


@app.command()
def init() -> None:
    """Create the constraints and indexes of docs/schema.md (idempotent); record the version."""
    from cli.connect import connected
    from db.schema import ensure_schema

    with connected(schema=False) as handle:
        version = ensure_schema(handle)
    console.print(f"[green]schema version {version} ready[/]")


@app.command()
def migrate() -> None:
    """Bring a database written by an older circuitmap up to this schema version, keeping every
    graph (resumable: run it again if it is stopped)."""
    from cli.connect import connected
    from db.schema import SCHEMA_VERSION
    from ingest.migrations import migrate as run_migration

    with connected(schema=False) as handle:
        found, graphs = run_migration(handle, lambda line: console.print(line, highlight=False))
    if found is None:
        console.print(f"[green]fresh database: schema version {SCHEMA_VERSION} created[/]")
    elif found == SCHEMA_VERSION:
        console.print(f"[green]already at schema version {SCHEMA_VERSION}: nothing to migrate[/]")
    else:
        console.print(
            f"[green]schema version {found} -> {SCHEMA_VERSION} ({graphs} graphs migrated)[/]"
        )


@app.command()
def aggregate() -> None:
    """Fold pending graphs into the corpus aggregates (an ingest run does this as it goes; this
    finishes the job after a run that was killed, with nothing else to ingest)."""
    from cli.connect import connected
    from ingest.aggregate import Aggregator

    with connected() as handle:
        folded = Aggregator(handle).fold_all()
    console.print(
        f"folded {folded.graphs} graphs into the corpus aggregates ({folded.features:,} feature"
        f" and {folded.pairs:,} feature-pair updates, {folded.seconds:.1f} s)"
    )
    if folded.dropped:
        console.print(f"dropped {folded.dropped} contributions of graphs that no longer exist")
