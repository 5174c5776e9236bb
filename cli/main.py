"""Entry point of the `circuitmap` CLI. Each command group lives in its own module here."""

import typer

from cli.catalogue import app as catalogue_app
from cli.corpus import circuit, suggest, validate
from cli.dashboard import dashboard
from cli.db import app as db_app
from cli.demo import app as demo_app
from cli.ingest import import_graphs, ingest
from cli.query import app as query_app
from cli.supernode import app as supernode_app
from cli.trace import trace
from cli.transcoders import app as transcoders_app

app = typer.Typer(
    name="circuitmap",
    help="Attribution graphs for whole corpora, stored in Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command groups register themselves here, one line each:
# app.add_typer(db_app, name="db")
app.add_typer(db_app, name="db")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(demo_app, name="demo")
app.add_typer(query_app, name="query")
app.add_typer(supernode_app, name="supernode")
app.add_typer(transcoders_app, name="transcoders")
app.command(name="dashboard")(dashboard)
app.command(name="trace")(trace)
app.command(name="ingest")(ingest)
app.command(name="import")(import_graphs)
app.command(name="circuit")(circuit)
app.command(name="validate")(validate)
supernode_app.command(name="suggest")(suggest)
