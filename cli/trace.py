"""`circuitmap trace PROMPT`: compute one attribution graph and summarise it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def demo_paths() -> tuple[str | None, str | None]:
    """(model, transcoders) used when --model / --transcoders are left out: the demo model and
    CLT once `circuitmap demo` has built them. None means no default."""
    from circuitmap.demo.stages import demo_paths as built

    paths = built()
    return (str(paths[0]), str(paths[1])) if paths else (None, None)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)


def trace(
    prompt: Annotated[str, typer.Argument(help="The prompt to attribute.")],
    model: Annotated[str | None, typer.Option(help="Model directory or hub name.")] = None,
    transcoders: Annotated[str | None, typer.Option(help="Transcoder directory.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the graph JSON here.")] = None,
    max_feature_nodes: Annotated[int | None, typer.Option(help="Cap on feature nodes.")] = None,
    batch_size: Annotated[int, typer.Option(help="Targets per backward batch.")] = 256,
    max_n_logits: Annotated[int, typer.Option(help="At most this many logit nodes.")] = 10,
    desired_logit_prob: Annotated[float, typer.Option(help="Logit nodes' total prob.")] = 0.95,
    node_threshold: Annotated[float, typer.Option(help="Share of influence kept.")] = 0.8,
    edge_threshold: Annotated[float, typer.Option(help="Share of edge score kept.")] = 0.98,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16.")] = "float32",
    device: Annotated[str, typer.Option(help="cpu or cuda (cuda:1, ...).")] = "cpu",
    transcoder_loading: Annotated[
        str, typer.Option(help="auto (memory-mapped when large), eager or lazy.")
    ] = "auto",
    memory_limit_gb: Annotated[
        float | None, typer.Option(help="Refuse graphs estimated above this (default: free).")
    ] = None,
) -> None:
    """Compute the pruned attribution graph of PROMPT: top logits, sizes, scores."""
    from circuitmap.graph_json import write_graph_json
    from circuitmap.pipeline import GraphBuilder, GraphSettings

    default_model, default_transcoders = demo_paths()
    model = model or default_model
    transcoders = transcoders or default_transcoders
    if model is None or transcoders is None:
        _fail("pass --model and --transcoders (no demo model and CLT are built yet)")
    try:
        settings = GraphSettings(
            max_n_logits=max_n_logits,
            desired_logit_prob=desired_logit_prob,
            batch_size=batch_size,
            max_feature_nodes=max_feature_nodes,
            node_threshold=node_threshold,
            edge_threshold=edge_threshold,
            dtype=dtype,
            device=device,
            transcoder_loading=transcoder_loading,
            memory_limit_gb=memory_limit_gb,
        )
        with console.status("loading model and transcoders"):
            builder = GraphBuilder.from_paths(model, transcoders, settings)
        with console.status("computing the graph"):
            result = builder.build_full(prompt)
    except (ValueError, OSError) as err:
        _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    record = result.record

    table = Table(title=f"Top logits after {record.prompt_tokens[-1]!r}")
    table.add_column("token")
    table.add_column("probability", justify="right")
    for node in sorted(record.nodes, key=lambda n: -(n.probability or 0.0)):
        if node.kind == "logit":
            table.add_row(repr(node.token), f"{node.probability:.3f}")
    console.print(table)
    meta = record.metadata
    console.print(
        f"graph: {meta['n_nodes_unpruned']} nodes / {meta['n_edges_unpruned']} edges "
        f"({meta['n_active_features']} active features) -> pruned {len(record.nodes)} nodes / "
        f"{record.n_edges} edges"
    )
    console.print(
        f"replacement score {record.scores['replacement']:.3f}, "
        f"completeness score {record.scores['completeness']:.3f}  ({result.seconds:.2f} s)"
    )
    if out is not None:
        write_graph_json(record, out)
        console.print(f"wrote {out}")
