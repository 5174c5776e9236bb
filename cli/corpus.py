"""Corpus circuits: `circuitmap supernode suggest`, `circuitmap circuit`, `circuitmap validate`.

Suggestion groups the features on the answer paths of a tag's graphs into candidate supernodes
(`circuitmap.grouping`); `--accept` saves one as an ordinary list-defined supernode. `circuit`
prints a tag's aggregate graph as rows. `validate` intervenes on a supernode in every prompt of a
tag and stores the outcome per prompt (`ingest.validation`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from cli.connect import connected
from cli.query import Format, OutputFormat, console, print_frame

if TYPE_CHECKING:
    pass

Tag = Annotated[str, typer.Option("--tag", "-t", help="The prompt tag, e.g. two_hop.")]
MinGraphs = Annotated[
    int, typer.Option(min=1, help="Features must lie on answer paths in this many graphs.")
]


def suggestion_frame(suggestions: list) -> pd.DataFrame:
    rows = [
        (i, s.label, len(s.uids), s.group.coverage, s.group.cohesion, ", ".join(s.uids[:4]))
        for i, s in enumerate(suggestions)
    ]
    columns = ["index", "label", "members", "coverage", "cohesion", "first members"]
    return pd.DataFrame(rows, columns=columns)


def suggestion_name(label: str, index: int, prefix: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return f"{prefix}{slug or 'group'}-{index}"


def suggest(
    tag: Tag,
    min_graphs: MinGraphs = 2,
    transcoders: Annotated[
        str | None,
        typer.Option(help="Transcoder directory for decoder similarity (default: the graphs')."),
    ] = None,
    directions: Annotated[
        bool, typer.Option(help="Use decoder similarity (needs the transcoder).")
    ] = True,
    resolution: Annotated[float, typer.Option(help="Louvain resolution (larger: smaller).")] = 1.0,
    min_similarity: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Weaker pairs of features are never joined.")
    ] = 0.5,
    accept: Annotated[
        list[int] | None, typer.Option(help="Save the suggestion with this index (repeat).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the supernode saved by a single --accept.")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Name prefix of accepted suggestions.")] = "",
    fmt: Format = OutputFormat.table,
) -> None:
    """Suggest supernodes: group the features on the answer paths of a tag's graphs."""
    from circuitmap.grouping import GroupingSettings
    from queries.corpus import (
        PathSearch,
        recorded_transcoder,
        suggest_supernodes,
        suggestion_inputs,
    )
    from queries.supernodes import create_supernode

    if name is not None and len(accept or []) != 1:
        raise typer.BadParameter("--name needs exactly one --accept")
    with connected() as handle:
        inputs = suggestion_inputs(handle, tag, PathSearch(min_graphs=min_graphs))
        transcoder, note = None, "without decoder similarity"
        path = transcoders or recorded_transcoder(inputs.graphs)
        if directions and path and Path(path).exists():
            from circuitmap.transcoders import load_transcoder

            transcoder, note = load_transcoder(path), f"decoder similarity from {path}"
        if inputs.corpus.has_logit_effects:
            note += ", logit effects from the catalogue"
        settings = GroupingSettings(resolution=resolution, min_similarity=min_similarity)
        suggestions = suggest_supernodes(inputs, settings, transcoder)
        print_frame(
            suggestion_frame(suggestions),
            fmt,
            f"{len(suggestions)} suggestions from {len(inputs.corpus.uids)} answer-path features "
            f"in {len(inputs.graphs)} graphs ({note})",
        )
        for index in accept or []:
            if not 0 <= index < len(suggestions):
                raise ValueError(f"no suggestion {index}: there are {len(suggestions)}")
            chosen = suggestions[index]
            saved = name or suggestion_name(chosen.label, index, prefix)
            create_supernode(
                handle,
                saved,
                description=f"suggested for tag {tag}: {chosen.label}",
                members=chosen.uids,
            )
            console.print(f"saved supernode {saved!r} ({len(chosen.uids)} features)", markup=False)


def circuit(
    tag: Tag,
    supernode: Annotated[
        list[str] | None, typer.Option("--supernode", "-s", help="Merge these supernodes (all).")
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="Only this supernode and its direct neighbours.")
    ] = None,
    min_graphs: MinGraphs = 2,
    nodes: Annotated[bool, typer.Option(help="Print the nodes instead of the edges.")] = False,
    fmt: Format = OutputFormat.table,
) -> None:
    """The corpus circuit of a tag (or of one supernode in it): aggregate nodes or edges."""
    from queries.corpus import PathSearch, corpus_circuit

    with connected() as handle:
        view = corpus_circuit(handle, tag, supernode or None, PathSearch(min_graphs), only)
    frame = view.nodes if nodes else view.edges
    print_frame(
        frame, fmt, f"{len(view.nodes)} nodes, {len(view.edges)} edges over {view.n_graphs} graphs"
    )


def validate(
    supernode: Annotated[str, typer.Argument(help="The supernode to intervene on.")],
    tag: Tag,
    scale: Annotated[
        float | None, typer.Option(help="Multiply its activations (-1 inhibits).")
    ] = None,
    swap_with: Annotated[
        str | None, typer.Option(help="Swap it for this supernode's features.")
    ] = None,
    strength: Annotated[
        float,
        typer.Option(help="Swap: inject the other's features at this multiple of the donor mean."),
    ] = 1.0,
    remove_scale: Annotated[
        float, typer.Option(help="Swap: multiply the supernode's own features by this (0 removes).")
    ] = 0.0,
    model: Annotated[str | None, typer.Option(help="Model (default: the graphs').")] = None,
    transcoders: Annotated[
        str | None, typer.Option(help="Transcoder directory (default: the graphs').")
    ] = None,
    max_donors: Annotated[int, typer.Option(min=1, help="Donor prompts of a swap.")] = 8,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts stored per transaction.")] = 32,
    threads: Annotated[
        int, typer.Option(min=1, help="torch threads (more only pays for large models).")
    ] = 1,
    fmt: Format = OutputFormat.table,
) -> None:
    """Intervene on a supernode in every prompt of a tag; store and summarise the outcomes."""
    import torch

    from circuitmap.pipeline import GraphBuilder
    from ingest.validation import run_validation
    from queries.corpus import validation_inputs, validation_results

    if (scale is None) == (swap_with is None):
        raise typer.BadParameter("give exactly one of --scale and --swap-with")
    with connected() as handle:
        inputs = validation_inputs(
            handle, supernode, tag, scale, swap_with, max_donors,
            strength=strength, remove_scale=remove_scale,
        )  # fmt: skip
        torch.set_num_threads(threads)
        model_path, tc_path = model or inputs.model_path, transcoders or inputs.tc_path
        try:
            builder = GraphBuilder.from_paths(model_path, tc_path)
        except OSError as error:
            raise ValueError(
                f"cannot load the graphs' model {model_path!r} or transcoder {tc_path!r} "
                f"({error}): give --model and --transcoders"
            ) from None
        with console.status(f"intervening on {len(inputs.prompts)} prompts"):
            report = run_validation(
                handle, builder, inputs.spec, inputs.prompts, batch_size=batch_size
            )
        results = validation_results(handle, report.uid)
    present = results[results["present"]]
    rate = present["success"].mean() if len(present) else float("nan")
    console.print(
        f"validation {report.uid}: {report.computed} prompts computed, {report.skipped} already "
        f"stored; {supernode} active in {len(present)} of {len(results)}; success in "
        f"{int(present['success'].sum())} ({rate:.0%}) of those",
        markup=False,
    )
    failed = present[~present["success"]]
    columns = ["prompt", "answer", "top_before", "top_after", "p_before", "p_after"]
    print_frame(failed[columns], fmt, f"{len(failed)} failed prompts")
