"""`circuitmap dashboard`: serve the Streamlit dashboard (app/main.py) on a port."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

APP_MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
STREAMLIT_OPTIONS = {
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "minimal",
    "theme.primaryColor": "#7c3aed",  # violet, beside the graph's magenta selection and PRGn edges
}


def streamlit_command(port: int, host: str) -> list[str]:
    """The `streamlit run` command line for the dashboard."""
    options = {"server.port": str(port), "server.address": host, **STREAMLIT_OPTIONS}
    flags = [part for name, value in options.items() for part in (f"--{name}", value)]
    return [sys.executable, "-m", "streamlit", "run", str(APP_MAIN), *flags]


def dashboard(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    host: Annotated[
        str, typer.Option(help="Address to bind (0.0.0.0 to serve other machines).")
    ] = os.environ.get("CIRCUITMAP_DASHBOARD_HOST", "127.0.0.1"),
) -> None:
    """Open the circuit review dashboard (reads Neo4j at NEO4J_URI, or the local server)."""
    if not 0 < port < 65536:
        raise typer.BadParameter(f"port must be between 1 and 65535, got {port}")
    typer.echo(f"circuitmap dashboard on http://{host}:{port}  (Ctrl-C to stop)")
    command = streamlit_command(port, host)
    os.execv(command[0], command)
