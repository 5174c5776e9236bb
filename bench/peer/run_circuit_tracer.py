"""Compute attribution graphs with circuit-tracer 0.5.0, the reference implementation we compare to.

Runs under `.venv-peer` (circuit-tracer pins transformers<=4.57.3, which conflicts with ours), so it
imports only circuit_tracer, torch and transformers, never `circuitmap`. `bench/attribution.py`
starts it in its own process so its peak memory is measured alone. (It lives in bench/peer/ so
that `make bench`, which runs every bench/*.py script under .venv, leaves it alone.)

    .venv-peer/bin/python bench/peer/run_circuit_tracer.py --model DIR --transcoders DIR \
        --prompts prompts.json --out graphs.pt [--batch-size 64 --max-feature-nodes N ...]

The model directory is a local Hugging Face model, run on circuit-tracer's nnsight backend where
it maps the architecture (Gemma-2, Llama, Qwen3, ...; it takes a local directory as is), else on
its TransformerLens backend (GPT-2, Qwen2; see `load_replacement_model`); the transcoder
directory is an absolute path holding circuit-tracer's `config.yaml` and its safetensors files
(its cache lookup then reads that directory and makes no hub call). The output
file holds, per prompt, the dense adjacency `[target, source]` (features, errors, tokens, logits),
the active features `(layer, pos, idx)` with their activations, the logit tokens and probabilities,
the input tokens and the wall and CPU time of the graph; plus the load time and this process's
peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="local Hugging Face model directory")
    p.add_argument("--transcoders", required=True, help="directory with config.yaml")
    p.add_argument("--prompts", required=True, help="JSON file: a list of prompt strings")
    p.add_argument("--out", required=True, help="output .pt file")
    p.add_argument("--max-n-logits", type=int, default=10)
    p.add_argument("--desired-logit-prob", type=float, default=0.95)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--max-feature-nodes", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1, help="untimed graphs before the timed ones")
    return p.parse_args(argv)


def graph_record(graph, seconds: float, cpu_seconds: float) -> dict:
    """The parts of a circuit-tracer Graph the equality check reads, as plain CPU tensors."""
    return {
        "adjacency": graph.adjacency_matrix.float().cpu(),
        "active_features": graph.active_features.cpu().long(),
        "activation_values": graph.activation_values.float().cpu(),
        "selected_features": graph.selected_features.cpu().long(),
        "logit_token_ids": torch.tensor([t.vocab_idx for t in graph.logit_targets]),
        "logit_probabilities": graph.logit_probabilities.float().cpu(),
        "input_tokens": graph.input_tokens.cpu().long(),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def peak_rss_bytes() -> int:
    """This process's peak resident memory since exec (VmHWM). getrusage's ru_maxrss would
    also count the parent's memory at fork time, which Linux carries over into the child."""
    return _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """This process's resident memory now (VmRSS)."""
    return _status_bytes("VmRSS")


def _status_bytes(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def load_replacement_model(model_dir: str, transcoders: str, device, dtype):
    """(circuit-tracer's ReplacementModel, its backend). TransformerLens accepts only its official
    model names: a local directory holding a config.json passes as one (TransformerLens reads such
    a directory's config itself), and the weights and tokenizer are handed over loaded."""
    import json

    from circuit_tracer import ReplacementModel
    from circuit_tracer.utils.tl_nnsight_mapping import get_supported_architectures

    architectures = json.loads(Path(model_dir, "config.json").read_text()).get("architectures")
    if set(architectures or []) & set(get_supported_architectures()):
        model = ReplacementModel.from_pretrained(
            model_dir, transcoders, backend="nnsight", device=device, dtype=dtype
        )
        return model, "nnsight"
    from transformer_lens import loading_from_pretrained as loading
    from transformers import AutoModelForCausalLM, AutoTokenizer

    official = loading.get_official_model_name
    loading.get_official_model_name = lambda name: (
        name if Path(name, "config.json").is_file() else official(name)
    )
    hf_model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = ReplacementModel.from_pretrained(
        model_dir, transcoders, backend="transformerlens", device=device, dtype=dtype,
        hf_model=hf_model, tokenizer=AutoTokenizer.from_pretrained(model_dir),
    )  # fmt: skip
    return model, "transformerlens"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when huggingface_hub is imported
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from circuit_tracer import attribute

    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    transcoders = str(Path(args.transcoders).resolve())
    if not Path(transcoders, "config.yaml").is_file():
        sys.exit(f"error: no config.yaml in transcoder directory {transcoders}")
    prompts = json.loads(Path(args.prompts).read_text())

    t0 = time.perf_counter()
    model, backend = load_replacement_model(args.model, transcoders, device, dtype)
    load_seconds = time.perf_counter() - t0
    load_rss = current_rss_bytes()

    settings = dict(
        max_n_logits=args.max_n_logits,
        desired_logit_prob=args.desired_logit_prob,
        batch_size=args.batch_size,
        max_feature_nodes=args.max_feature_nodes,
    )
    for prompt in prompts[: args.warmup]:
        attribute(prompt, model, **settings)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    graphs = []
    for prompt in prompts:
        sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        graph = attribute(prompt, model, **settings)
        sync(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        graphs.append(graph_record(graph, seconds, cpu))

    import circuit_tracer

    torch.save(
        {
            "tool": f"circuit-tracer {circuit_tracer.__version__}",
            "backend": backend,
            "graphs": graphs,
            "load_seconds": load_seconds,
            "load_rss_bytes": load_rss,
            "peak_rss_bytes": peak_rss_bytes(),
            "cuda_peak_bytes": (
                torch.cuda.max_memory_allocated() if device.type == "cuda" else None
            ),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
