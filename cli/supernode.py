"""`circuitmap supernode ...`: feature groups defined by saved queries or lists, and their views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from cli.connect import connected
from cli.query import Format, OutputFormat, Params, console, print_frame

app = typer.Typer(help="Supernodes: named groups of features, defined by a saved query or a list.")

Name = Annotated[str, typer.Argument(help="A supernode name.")]
Graph = Annotated[str, typer.Argument(help="A graph uid.")]
Only = Annotated[
    list[str] | None, typer.Option("--supernode", "-s", help="Only these supernodes (repeat).")
]


@app.command("create")
def create(
    name: Name,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Saved query returning feature uids.")
    ] = None,
    param: Params = None,
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="A member feature uid (repeat); instead of --query."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the group stands for.")] = "",
) -> None:
    """Create a supernode from a saved query (re-evaluated on refresh) or a fixed list."""
    from queries.runner import param_types, parse_cli_params
    from queries.supernodes import create_supernode

    with connected() as handle:
        params = parse_cli_params(param or [], param_types(handle, query)) if query else {}
        node = create_supernode(
            handle,
            name,
            description=description,
            query_name=query,
            params=params,
            members=None if query else list(feature or []),
        )
    console.print(f"supernode {node.name!r} with {len(node.members)} feature(s)", markup=False)


@app.command("list")
def list_supernodes() -> None:
    """List supernodes with their definition and size."""
    from queries.supernodes import list_supernodes as list_all

    with connected() as handle:
        nodes = list_all(handle)
    rows = [
        (n.name, len(n.members), n.query_name or "(list)", json.dumps(n.params), n.refreshed_at)
        for n in nodes
    ]
    columns = ["name", "members", "query", "params", "refreshed_at"]
    print_frame(pd.DataFrame(rows, columns=columns), OutputFormat.table)


@app.command("show")
def show(
    name: Name,
    history: Annotated[bool, typer.Option(help="Also list the membership revisions.")] = False,
) -> None:
    """Show a supernode's definition, members and (optionally) its history."""
    from queries.supernodes import get_supernode
    from queries.supernodes import history as revisions

    with connected() as handle:
        node = get_supernode(handle, name)
        if node is None:
            raise LookupError(f"no supernode named {name!r}")
        past = revisions(handle, name) if history else []
    console.print(f"[bold]{node.name}[/bold]: {node.description}")
    source = f"saved query {node.query_name} {json.dumps(node.params)}"
    console.print(
        f"defined by: {source if node.query_name else 'list'}; refreshed {node.refreshed_at}",
        markup=False,
    )
    print_frame(pd.DataFrame({"feature_uid": node.members}), OutputFormat.table)
    if history:
        rows = [(r.at, len(r.members), ", ".join(r.members[:5])) for r in past]
        columns = ["at", "members", "first members"]
        print_frame(pd.DataFrame(rows, columns=columns), OutputFormat.table)


@app.command("refresh")
def refresh(
    name: Annotated[str | None, typer.Argument(help="A supernode name; omit with --all.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Refresh every query-defined supernode.")
    ] = False,
) -> None:
    """Re-evaluate membership from the defining query (a revision is kept when it changes)."""
    from queries.supernodes import refresh_all_supernodes, refresh_supernode

    if (name is None) == (not all_):
        raise typer.BadParameter("give a supernode name or --all")
    with connected() as handle:
        results = refresh_all_supernodes(handle) if all_ else [refresh_supernode(handle, name)]
    for r in results:
        console.print(f"{r.name}: +{len(r.added)} -{len(r.removed)}", markup=False)


@app.command("delete")
def delete(name: Name) -> None:
    """Delete a supernode and its history (the features stay)."""
    from queries.supernodes import delete_supernode

    with connected() as handle:
        delete_supernode(handle, name)
    console.print(f"deleted supernode {name!r}", markup=False)


@app.command("collapse")
def collapse(graph: Graph, supernode: Only = None, fmt: Format = OutputFormat.table) -> None:
    """Print a graph's edges with supernode members merged (edges between groups summed)."""
    from queries.supernodes import collapsed_graph

    with connected() as handle:
        view = collapsed_graph(handle, graph, supernode or None)
    print_frame(view.edges, fmt, f"{len(view.nodes)} groups, {len(view.edges)} edges")


@app.command("export")
def export(
    graph: Graph,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the graph JSON.")],
    supernode: Only = None,
) -> None:
    """Export a graph with its supernodes as Neuronpedia graph JSON (qParams.supernodes)."""
    from queries.supernodes import export_graph_json

    with connected() as handle:
        document = export_graph_json(handle, graph, supernode or None)
    out.write_text(json.dumps(document))
    groups = len(document["qParams"]["supernodes"])
    summary = f"wrote {out} ({len(document['nodes'])} nodes, {groups} supernodes)"
    console.print(summary, markup=False)
