"""The worker's rich progress bar (prompts/s, edges/s, ETA) and its end-of-run summary."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ingest.corpus import CorpusError
from ingest.worker import Reporter, RunSummary


class RichReporter(Reporter):
    """A progress bar over the corpus; rates count graphs computed in this run."""

    def __init__(self, console: Console, total: int | None, label: str = "ingest"):
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=total, rates="")
        self.start = time.perf_counter()
        self.computed = 0
        self.edges = 0
        self.lock = threading.Lock()

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, status: str, edges: int) -> None:
        with self.lock:
            if status in ("written", "failed"):
                self.computed += 1
                self.edges += edges
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            rates = f"{self.computed / elapsed:.2f} prompts/s  {self.edges / elapsed:,.0f} edges/s"
            self.progress.update(self.task, advance=1, rates=rates)

    def log(self, message: str) -> None:
        self.progress.console.print(f"[yellow]{message}[/]", highlight=False)


def print_summary(
    console: Console, summary: RunSummary, malformed: list[CorpusError], shown: int = 20
) -> None:
    table = Table(title="ingest summary", show_header=False)
    rows = [
        ("graphs written", summary.written),
        ("prompts failed (recorded)", summary.failed),
        ("already complete (skipped)", summary.already_done),
        ("failed before (skipped; --retry-failed retries)", summary.already_failed),
        ("malformed corpus lines (skipped)", len(malformed)),
        ("nodes written", f"{summary.nodes:,}"),
        ("edges written", f"{summary.edges:,}"),
        ("graphs folded into the corpus aggregates", summary.folded),
        ("elapsed", f"{summary.seconds:.1f} s"),
        ("folding (beside writing)", f"{summary.fold_seconds:.1f} s"),
        ("prompts/s (computed)", f"{summary.prompts_per_s:.2f}"),
        ("edges/s", f"{summary.edges_per_s:,.0f}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    for error in malformed[:shown]:
        console.print(f"[red]malformed[/] {error}", highlight=False)
    for failure in summary.failures[:shown]:
        console.print(f"[red]failed[/] {failure}", highlight=False)
    hidden = max(len(malformed) - shown, 0) + max(summary.failed - shown, 0)
    if hidden:
        console.print(f"... and {hidden} more")
