"""`circuitmap query ...`: list, show, run, save, update and delete library and saved queries."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cli.connect import connected

app = typer.Typer(help="Cypher queries over the corpus: the library and your saved queries.")
console = Console()
errors = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


PARAM_HELP = "A parameter as name=value (repeat the option for several)."
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help=PARAM_HELP)]
Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]


def print_frame(frame: pd.DataFrame, fmt: OutputFormat, note: str = "") -> None:
    """Tables for people, CSV/JSON for programs (the note then goes to stderr)."""
    if fmt is OutputFormat.csv:
        cells = frame.map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
        sys.stdout.write(cells.to_csv(index=False))
    elif fmt is OutputFormat.json:
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=1) + "\n")
    elif len(frame) == 1 and len(frame.columns) > 6:
        table = Table("column", "value")
        for column, value in frame.iloc[0].items():
            table.add_row(str(column), _cell(value))
        console.print(table)
    else:
        table = Table(show_lines=False)
        for column in frame.columns:
            table.add_column(str(column), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
    if note:
        (console if fmt is OutputFormat.table else errors).print(note, markup=False)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


@app.command("list")
def list_queries() -> None:
    """List the library queries and the saved queries."""
    from queries.library import load_library
    from queries.saved import list_saved

    rows = [("library", q.name, q.title) for q in load_library().values()]
    with connected() as handle:
        rows += [("saved", q.name, q.description) for q in list_saved(handle)]
    print_frame(pd.DataFrame(rows, columns=["source", "name", "description"]), OutputFormat.table)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="A library or saved query name.")]) -> None:
    """Show a query's documentation, parameters and Cypher."""
    from queries.library import load_library
    from queries.saved import get_saved

    library = load_library()
    if name in library:
        query = library[name]
        console.print(f"[bold]{query.name}[/bold] (library): {query.title}")
        console.print(query.description, markup=False)
        params = pd.DataFrame(
            [
                (p.name, p.type, "required" if p.required else json.dumps(p.default), p.doc)
                for p in query.params
            ],
            columns=["parameter", "type", "default", "doc"],
        )
        print_frame(params, OutputFormat.table)
        print_frame(
            pd.DataFrame([(c.name, c.doc) for c in query.columns], columns=["column", "doc"]),
            OutputFormat.table,
        )
        console.print(query.cypher, markup=False, highlight=False)
        return
    with connected() as handle:
        stored = get_saved(handle, name)
        if stored is None:
            raise LookupError(f"no library or saved query named {name!r}")
    console.print(f"[bold]{stored.name}[/bold] (saved): {stored.description}")
    console.print(f"defaults: {json.dumps(stored.params)}", markup=False)
    console.print(f"updated: {stored.updated_at}", markup=False)
    console.print(stored.cypher, markup=False, highlight=False)


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="A library or saved query name.")],
    param: Params = None,
    fmt: Format = OutputFormat.table,
    row_cap: Annotated[
        int | None, typer.Option(help="Most rows returned (default $CIRCUITMAP_QUERY_ROW_CAP).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds before the query is stopped.")
    ] = None,
) -> None:
    """Run a query with its defaults, overridden by --param name=value."""
    from queries.runner import param_types, parse_cli_params, run_query

    with connected() as handle:
        params = parse_cli_params(param or [], param_types(handle, name))
        result = run_query(handle, name, params, row_cap=row_cap, timeout_s=timeout)
    print_frame(result.frame, fmt, result.note)


def _read_cypher(file: Path) -> str:
    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}")
    return file.read_text()


@app.command("save")
def save(
    name: Annotated[str, typer.Argument(help="Name of the new saved query.")],
    file: Annotated[Path, typer.Option("--file", help="File holding the Cypher.")],
    description: Annotated[str, typer.Option(help="What the query finds.")] = "",
    param: Params = None,
) -> None:
    """Save a read-only query (checked before it is stored)."""
    from queries.runner import parse_cli_params
    from queries.saved import save_query

    cypher = _read_cypher(file)
    with connected() as handle:
        stored = save_query(handle, name, cypher, description, parse_cli_params(param or [], {}))
    console.print(f"saved query {stored.name!r}", markup=False)


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="A saved query name.")],
    file: Annotated[
        Path | None, typer.Option("--file", help="File holding the new Cypher.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    param: Params = None,
) -> None:
    """Change a saved query's Cypher, description or defaults (--param replaces all defaults)."""
    from queries.runner import parse_cli_params
    from queries.saved import update_query

    cypher = _read_cypher(file) if file else None
    params = parse_cli_params(param, {}) if param else None
    with connected() as handle:
        update_query(handle, name, cypher=cypher, description=description, params=params)
    console.print(f"updated query {name!r}", markup=False)


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="A saved query name.")]) -> None:
    """Delete a saved query."""
    from queries.saved import delete_query

    with connected() as handle:
        delete_query(handle, name)
    console.print(f"deleted query {name!r}", markup=False)
