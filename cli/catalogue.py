"""`circuitmap catalogue ...`: feature pages for any model and transcoder; labels from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.connect import connected, fail

if TYPE_CHECKING:
    from db.connection import Neo4jHandle

app = typer.Typer(help="Feature catalogues (feature pages) and feature labels.")
console = Console()


@contextmanager
def _handle() -> Iterator[Neo4jHandle]:
    from db.connection import Neo4jHandle, database_name

    with connected(notifications_min_severity="OFF") as conn:
        yield conn if isinstance(conn, Neo4jHandle) else Neo4jHandle(conn, database_name())


class _Bar:
    """A rich progress bar per pass, with tokens/s and the ETA (a context manager)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("texts · {task.fields[rate]} tokens/s · ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, step) -> None:
        from time import perf_counter

        if step.stage not in self.tasks:
            name = "corpus" if step.stage == "corpus" else "contexts"
            self.tasks[step.stage] = self.progress.add_task(name, total=step.total, rate="-")
            self._start = (perf_counter(), step.tokens)
        seconds = perf_counter() - self._start[0]
        rate = (step.tokens - self._start[1]) / seconds if seconds > 0 else 0.0
        self.progress.update(
            self.tasks[step.stage], completed=step.done, total=step.total, rate=f"{rate:,.0f}"
        )


@app.command("build")
def build(
    model: Annotated[str, typer.Option(help="Hugging Face model directory (or hub name).")],
    transcoders: Annotated[
        Path, typer.Option(help="Transcoder directory (ours or circuit-tracer's).")
    ],
    corpus: Annotated[Path, typer.Option(help="Texts: .txt (a text per line), .jsonl or .csv.")],
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: TRANSCODERS/catalogue).")
    ] = None,
    contexts: Annotated[int, typer.Option(help="Top activating contexts per feature.")] = 10,
    bins: Annotated[int, typer.Option(help="Quantile bins below the top (0: none).")] = 5,
    per_bin: Annotated[int, typer.Option(help="Contexts shown per quantile bin.")] = 2,
    logits: Annotated[int, typer.Option(help="Top and bottom logit effects per feature.")] = 10,
    batch_texts: Annotated[int, typer.Option(help="Corpus texts per batch.")] = 32,
    max_seq_len: Annotated[int, typer.Option(help="Tokens per text (longer ones are cut).")] = 128,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    store: Annotated[bool, typer.Option(help="Also write the catalogue to Neo4j.")] = True,
    transcoder_uid: Annotated[
        str | None, typer.Option(help="Transcoder uid in the database (default: as `ingest`).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Build every feature's page over CORPUS: top contexts (and quantile bins), density, logit
    effects and an automatic label. Resumable: run it again after a kill to continue."""
    import torch

    from circuitmap.catalogue import CATALOGUE_DIR, CatalogueSettings, build_catalogue_dir
    from circuitmap.models import load_model
    from circuitmap.pipeline import model_identity
    from circuitmap.transcoders import TranscoderFormatError, load_transcoder
    from ingest.corpus import Corpus

    if threads:
        torch.set_num_threads(threads)
    out = out or transcoders / CATALOGUE_DIR
    try:
        settings = CatalogueSettings(
            n_contexts=contexts, n_logits=logits, batch_texts=batch_texts,
            quantile_bins=bins, per_bin=per_bin, max_seq_len=max_seq_len,
        )  # fmt: skip
        reader = Corpus(corpus)
        texts = [record.text for record in reader]
        for error in reader.errors[:5]:
            console.print(f"[yellow]skipped[/yellow] {corpus}: {error}")
        if not texts:
            fail(f"corpus {corpus} has no texts")
        lm, tokenizer = load_model(model, device=device, dtype=dtype)
        tc = load_transcoder(transcoders, device=device, dtype=dtype)
        with torch.no_grad(), _Bar(progress) as bar:
            result = build_catalogue_dir(
                lm, tokenizer, tc, texts, out, settings, progress=bar,
                describe={"model": model, "transcoders": str(transcoders)},
            )  # fmt: skip
    except (ValueError, OSError, TranscoderFormatError) as error:
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    resumed = f", resumed after {result.resumed_from:,} texts" if result.resumed_from else ""
    console.print(
        f"catalogue of {tc.n_layers} x {tc.n_features:,} features over {result.n_texts:,} texts "
        f"({result.n_tokens:,} tokens) in {result.seconds:,.1f} s{resumed}: {out}"
    )
    if store:
        from ingest.catalog import TranscoderInfo

        uid = transcoder_uid or tc.config.name or transcoders.resolve().name
        info = TranscoderInfo(
            uid=uid, model_uid=model_identity(model), kind=tc.config.kind,
            n_layers=tc.n_layers, n_features=tc.n_features, d_model=tc.d_model,
            model_family=getattr(lm.config, "model_type", ""), vocab_size=len(tokenizer),
        )  # fmt: skip
        _store(out, info)


def _store(out: Path, info) -> None:
    from circuitmap.catalogue import load_catalogue
    from ingest.feature_labels import store_catalogue

    cards = load_catalogue(out)
    with _handle() as handle, console.status("writing the catalogue to Neo4j"):
        n = store_catalogue(handle, info, cards)
    console.print(f"stored {n:,} features of {info.uid}")


@app.command("labels")
def labels(
    file: Annotated[Path, typer.Argument(help="CSV / JSON / JSONL (.gz) of layer, index, label.")],
    transcoder: Annotated[
        str | None,
        typer.Option(help="Transcoder uid the labels belong to (default: the only one stored)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace labels someone edited, too.")] = False,
) -> None:
    """Import feature labels (ours, or Neuronpedia's explanation exports) onto `:Feature` nodes
    and their graph nodes. Edited labels are kept unless --force."""
    from ingest.feature_labels import (
        LabelFileError,
        known_transcoders,
        read_label_file,
        write_labels,
    )

    try:
        parsed = read_label_file(file)
    except LabelFileError as error:
        fail(str(error))
    for error in parsed.errors[:10]:
        console.print(f"[yellow]skipped[/yellow] {file}: {error}")
    if parsed.errors:
        console.print(f"{len(parsed.errors):,} rows skipped")
    if not parsed.labels:
        fail(f"{file} has no usable labels")
    with _handle() as handle:
        if transcoder is None:
            stored = known_transcoders(handle)
            if len(stored) != 1:
                choice = ", ".join(stored) or "none stored yet"
                fail(f"say which transcoder the labels are for: --transcoder ({choice})")
            transcoder = stored[0]
        summary = write_labels(handle, transcoder, parsed.labels, force=force)
    duplicates = (
        f" ({parsed.duplicates:,} further explanations ignored)" if parsed.duplicates else ""
    )
    console.print(
        f"{summary.features:,} labels for {transcoder}{duplicates}: {summary.replaced:,} shown, "
        f"{summary.kept:,} edited labels kept; {summary.graph_nodes:,} graph nodes relabelled"
    )
