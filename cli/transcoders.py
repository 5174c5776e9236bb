"""`circuitmap transcoders ...`: train transcoders on a model's activations, inspect files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Per-layer and cross-layer transcoders: train, inspect.")
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)


@app.command("train")
def train(
    model: Annotated[str, typer.Option(help="Hugging Face model directory (or hub name).")],
    corpus: Annotated[Path, typer.Option(help="Text file, one prompt/document per line.")],
    out: Annotated[Path, typer.Option(help="Directory for the transcoder (and checkpoints).")],
    kind: Annotated[str, typer.Option(help="clt (cross-layer) or plt (per-layer).")] = "clt",
    features: Annotated[int, typer.Option(help="Features per layer.")] = 1024,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 2000,
    batch_tokens: Annotated[int, typer.Option(help="Tokens per step.")] = 512,
    lr: Annotated[
        float, typer.Option(help="Adam learning rate (decays to 0 over the last 20%).")
    ] = 1e-3,
    sparsity: Annotated[float, typer.Option(help="Final sparsity coefficient lambda.")] = 0.005,
    sparsity_c: Annotated[float, typer.Option(help="c in tanh(c * ||W_dec|| * a).")] = 1.0,
    preact: Annotated[float, typer.Option(help="Pre-activation penalty lambda_p.")] = 3e-6,
    activation: Annotated[str, typer.Option(help="jumprelu, relu or topk.")] = "jumprelu",
    topk: Annotated[int | None, typer.Option(help="k for --activation topk.")] = None,
    input_site: Annotated[
        str, typer.Option(help="resid_mid, mlp_in or mlp_in_unweighted.")
    ] = "resid_mid",
    output_site: Annotated[str, typer.Option(help="mlp_out or mlp_out_post_norm.")] = "mlp_out",
    skip: Annotated[bool, typer.Option(help="Learn a linear skip connection.")] = False,
    buffer_tokens: Annotated[int, typer.Option(help="Activation buffer size (tokens).")] = 65536,
    max_seq_len: Annotated[int, typer.Option(help="Truncate prompts to this many tokens.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed (init, shuffling, held-out split).")] = 0,
    checkpoint_every: Annotated[
        int, typer.Option(help="Checkpoint interval in steps (0: never).")
    ] = 500,
    resume: Annotated[bool, typer.Option(help="Resume from a checkpoint in --out.")] = True,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads (default: torch's choice).")
    ] = None,
    circuit_tracer_out: Annotated[
        Path | None,
        typer.Option(help="Also write the result in circuit-tracer's format to this directory."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a transcoder on MODEL's activations over CORPUS and save it to OUT."""
    import torch

    from circuitmap.models import load_model
    from circuitmap.transcoders import TranscoderFormatError, save_transcoder
    from circuitmap.transcoders.training import TrainConfig, train_transcoder

    if threads:
        torch.set_num_threads(threads)
    try:
        config = TrainConfig(
            kind=kind,
            n_features=features,
            activation=activation,
            topk=topk,
            input_site=input_site,
            output_site=output_site,
            skip=skip,
            steps=steps,
            batch_tokens=batch_tokens,
            lr=lr,
            sparsity=sparsity,
            sparsity_c=sparsity_c,
            preact=preact,
            buffer_tokens=buffer_tokens,
            max_seq_len=max_seq_len,
            checkpoint_every=checkpoint_every,
            seed=seed,
            model_name=model,
            name=out.name,
        )
        if not corpus.is_file():
            _fail(f"corpus file {corpus} not found")
        lm, tokenizer = load_model(model, device=device)
        result = train_transcoder(lm, tokenizer, corpus, config, out, progress, resume)
        if circuit_tracer_out is not None:
            save_transcoder(result.transcoder, circuit_tracer_out, format="circuit-tracer")
    except (ValueError, OSError, TranscoderFormatError) as e:
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    table = Table("layer", "NMSE", "L0", "dead")
    for m in result.layers:
        table.add_row(str(m.layer), f"{m.nmse:.4f}", f"{m.l0:.1f}", f"{m.dead_fraction:.1%}")
    console.print(table)
    console.print(
        f"NMSE {result.nmse:.4f}, L0 {result.l0:.1f} (held-out {result.eval_tokens} tokens), "
        f"{result.tokens_per_s:,.0f} tokens/s; saved to {out}"
        + (f" and {circuit_tracer_out} (circuit-tracer)" if circuit_tracer_out else "")
    )


@app.command("info")
def info(
    path: Annotated[Path, typer.Argument(help="Transcoder directory (ours or circuit-tracer's).")],
) -> None:
    """Print a transcoder's config and parameter shapes (reads only headers and small tensors,
    so it is quick for transcoders of any size)."""
    from circuitmap.transcoders import TranscoderFormatError, load_transcoder
    from circuitmap.transcoders.formats import CONFIG_JSON, read_config

    try:
        tc = load_transcoder(path, lazy=True)
        metrics = (
            read_config(path).get("metadata", {}).get("metrics")
            if ((path / CONFIG_JSON).exists())
            else None
        )
    except (OSError, TranscoderFormatError) as e:
        _fail(str(e))
    table = Table("field", "value")
    for key, value in tc.config.to_dict().items():
        table.add_row(key, str(value))
    console.print(table)
    shapes = Table("parameter", "shape", "dtype")
    tensors = {**dict(tc.named_parameters()), **tc.disk_tensors()}
    for name, p in tensors.items():
        shapes.add_row(name, str(list(p.shape)), str(p.dtype).removeprefix("torch."))
    console.print(shapes)
    n_params = sum(p.numel() for p in tensors.values())
    console.print(f"{n_params:,} parameters")
    if metrics:
        console.print(
            f"trained: NMSE {metrics['nmse']:.4f}, L0 {metrics['l0']:.1f}, {metrics['steps']} steps"
        )
