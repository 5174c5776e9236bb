"""`circuitmap demo ...`: build the demo world's artefacts (cached under $CIRCUITMAP_HOME/demo)."""

from __future__ import annotations

import json

import typer
from rich.console import Console

app = typer.Typer(help="The demo world: a small model trained here on a synthetic corpus.")
console = Console()


@app.command("build-model")
def build_model(
    threads: int = typer.Option(2, help="torch threads for training."),
    rebuild: bool = typer.Option(False, help="Train again even if a cached model exists."),
) -> None:
    """Train the demo model (or reuse the cached one) and print its per-task accuracy."""
    from circuitmap.demo.artifacts import build_demo_model, demo_model_dir, is_built

    cached = is_built(demo_model_dir()) and not rebuild
    path = build_demo_model(threads=threads, rebuild=rebuild)
    report = json.loads((path / "training.json").read_text())
    console.print(f"demo model {'(cached) ' if cached else ''}at {path}")
    console.print(f"trained in {report['seconds']:.0f} s on {report['threads']} thread(s)")
    for key, acc in report["accuracy"].items():
        console.print(f"  {key:20s} {acc['value']:7.1%}  ({acc['correct']}/{acc['total']})")
