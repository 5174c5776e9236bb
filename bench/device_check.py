"""One short run on a lent GPU: CPU-versus-GPU equality, the bfloat16 error, and timings.

    .venv/bin/python -m bench.device_check [--layers 4] [--features 16384] [--tokens 16 64 512]

Builds (under --root, in a few seconds on a GPU machine) a random model of gemma-2-2b's width
(`bench/gemma_shapes.py`, `--layers` of its 26 layers) with a calibrated 16k-feature CLT written
in circuit-tracer's format, then for each prompt length:
- float32 on CPU and on the GPU, lazily loaded transcoder on both: the GPU graph must equal the
  CPU graph (relative edge error, same active features);
- bfloat16 on the GPU against float32 on the GPU: relative edge error over the features both
  graphs share and kept-node agreement after pruning (docs/precision.md states the bound);
- time per graph (after one warm-up graph) and the CUDA allocator's peak per dtype;
- with `--long-tokens N` (default 2,048; 0 skips it), one prompt of N tokens through
  `GraphBuilder` in bfloat16 on the GPU: the CUDA allocator's peak above the resident weights
  against circuitmap's memory estimate (docs/precision.md), which must bound it.
Prints one table and writes JSON under bench/results/, naming the card. Everything runs in one
process so a lent machine's few minutes go to the checks, not to start-ups. Without CUDA it
says so and stops (exit status 0, so `make bench` passes on machines without one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.gemma_shapes import GemmaSpec, build_world

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--features", type=int, default=16384)
    p.add_argument("--tokens", type=int, nargs="+", default=[16, 64, 512], help="words/prompt")
    p.add_argument("--shape", default="gemma-2-2b", choices=["gemma-2-2b", "smoke"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-feature-nodes", type=int, default=7500)
    p.add_argument("--root", type=Path, default=Path("/tmp/circuitmap-device-check"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--allow-cpu", action="store_true", help="run on CPU anyway (plumbing test)")
    p.add_argument(
        "--long-tokens", type=int, default=2048, help="tokens of the long-prompt check (0: skip)"
    )
    return p.parse_args(argv)


def relative_edge_error(a, b) -> float:
    """max |a - b| over max |a|, on the rows and columns of the features both graphs share."""
    keys = [{tuple(f): i for i, f in enumerate(g.active_features.tolist())} for g in (a, b)]
    sel = [{int(s) for s in g.selected_features.tolist()} for g in (a, b)]
    common = [f for f in keys[0] if f in keys[1] and keys[0][f] in sel[0] and keys[1][f] in sel[1]]
    if not common:
        return float("nan")

    def block(g, key):
        node = {int(s): i for i, s in enumerate(g.selected_features.tolist())}
        rows = torch.tensor([node[key[f]] for f in common])
        cols = torch.cat([rows, torch.arange(g.token_offset, g.logit_offset)])
        return g.rows[rows][:, cols].double()

    x, y = block(a, keys[0]), block(b, keys[1])
    return float((x - y).abs().max() / x.abs().max().clamp(min=1e-30))


def kept_agreement(a, b) -> float:
    """Jaccard overlap of the pruned graphs' kept feature and error nodes."""
    from circuitmap.pruning import prune

    def kept(g):
        mask = prune(g).node_mask
        feats = g.active_features[g.selected_features].tolist()
        out = {tuple(feats[i]) for i in mask[: g.n_features].nonzero().flatten().tolist()}
        errors = mask[g.error_offset : g.token_offset].nonzero().flatten().tolist()
        return out | {("error", i) for i in errors}

    x, y = kept(a), kept(b)
    return len(x & y) / max(len(x | y), 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("no CUDA device: nothing to check here (run on a lent GPU)", file=sys.stderr)
        return 0
    from circuitmap.attribution import attribute
    from circuitmap.models import load_model, tokenize
    from circuitmap.replacement import ReplacementModel
    from circuitmap.transcoders import load_transcoder

    device = args.device if torch.cuda.is_available() else "cpu"
    spec = GemmaSpec(
        case="b",
        n_layers=args.layers,
        n_features=args.features,
        prompt_lengths=tuple(args.tokens),
        shape=args.shape,
    )
    t0 = time.perf_counter()
    world = build_world(spec, args.root)
    print(f"world {spec.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    settings = {"batch_size": args.batch_size, "max_feature_nodes": args.max_feature_nodes}

    def replacement(where: str, dtype: str) -> tuple[ReplacementModel, object]:
        model, tokenizer = load_model(str(world.model_dir), where, dtype)
        tc = load_transcoder(world.transcoder_dir, where, dtype, lazy=True)
        return ReplacementModel(model, tc), tokenizer

    def timed(rm, ids, where: str):
        if where.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        graph = attribute(rm, ids, **settings)
        if where.startswith("cuda"):
            torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() if where.startswith("cuda") else None
        return graph, time.perf_counter() - start, peak

    where = {"cpu-float32": "cpu", "gpu-float32": device, "gpu-bfloat16": device}
    setups = {name: replacement(w, name.split("-")[1]) for name, w in where.items()}
    tokenizer = setups["cpu-float32"][1]
    warm = tokenize(tokenizer, world.prompts[0])
    for name, (rm, _) in setups.items():
        if name != "cpu-float32":
            attribute(rm, warm, **settings)  # warm-up (kernels, allocator)
    rows = []
    for prompt in world.prompts:
        ids = tokenize(tokenizer, prompt)
        runs = {name: timed(rm, ids, name.split("-")[0]) for name, (rm, _) in setups.items()}
        cpu, gpu, low = (runs[k][0] for k in setups)
        row = {
            "tokens": int(ids.shape[0]),
            "active_features": int(cpu.active_features.shape[0]),
            "nodes": cpu.n_nodes,
            "gpu_same_active": bool(torch.equal(cpu.active_features, gpu.active_features)),
            "gpu_vs_cpu_rel_error": relative_edge_error(cpu, gpu),
            "bf16_vs_fp32_rel_error": relative_edge_error(gpu, low),
            "bf16_kept_agreement": kept_agreement(gpu, low),
            "seconds": {k: v[1] for k, v in runs.items()},
            "cuda_peak_bytes": {k: v[2] for k, v in runs.items()},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (plumbing run)"
    print(f"\n{card}; {spec.name}, {args.features} features/layer, batch {args.batch_size}")
    print(f"{'tokens':>7}{'active':>8}{'gpu=cpu':>9}{'gpu rel':>10}{'bf16 rel':>10}"
          f"{'bf16 kept':>10}{'cpu32 s':>9}{'gpu32 s':>9}{'gpu16 s':>9}")  # fmt: skip
    for r in rows:
        s = list(r["seconds"].values())
        print(
            f"{r['tokens']:>7}{r['active_features']:>8}{str(r['gpu_same_active']):>9}"
            f"{r['gpu_vs_cpu_rel_error']:>10.1e}{r['bf16_vs_fp32_rel_error']:>10.1e}"
            f"{r['bf16_kept_agreement']:>10.3f}{s[0]:>9.2f}{s[1]:>9.2f}{s[2]:>9.2f}"
        )
    long = long_prompt_check(world, spec, args, device) if args.long_tokens else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"device-check-{time.strftime('%Y%m%d-%H%M%S')}.json"
    doc = {"device": card, "spec": spec.to_dict(), "rows": rows, "long_prompt": long}
    out.write_text(json.dumps(doc, indent=2))
    print(f"results: {out}")
    ok = all(r["gpu_same_active"] and r["gpu_vs_cpu_rel_error"] <= 1e-4 for r in rows)
    ok = ok and (long is None or long["within_estimate"])
    return 0 if ok else 1


def long_prompt_check(world, spec: GemmaSpec, args: argparse.Namespace, device: str) -> dict:
    """One `--long-tokens` prompt through `GraphBuilder` in bfloat16: the peak device memory
    above the resident weights (CUDA allocator; RSS on a CPU plumbing run) against the
    estimate. The prompt is random words of the world's vocabulary."""
    from bench.fixtures import random_prompts
    from bench.long_prompt import reset_peak
    from bench.peer.run_circuit_tracer import current_rss_bytes, peak_rss_bytes
    from circuitmap.pipeline import GraphBuilder, GraphSettings

    settings = GraphSettings(
        dtype="bfloat16", device=device, batch_size=args.batch_size,
        max_feature_nodes=args.max_feature_nodes, transcoder_loading="lazy",
    )  # fmt: skip
    builder = GraphBuilder.from_paths(str(world.model_dir), str(world.transcoder_dir), settings)
    (prompt,) = random_prompts(spec, [args.long_tokens - 1], seed=spec.seed + 7)  # type: ignore[arg-type]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = current_rss_bytes()
        reset_peak()  # VmHWM from here on
    start = time.perf_counter()
    result = builder.build_full(prompt)
    if cuda:
        torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() if cuda else peak_rss_bytes()) - base
    graph = result.graph
    need = builder.check_memory(graph.n_pos, int(graph.active_features.shape[0]))
    row = {
        "tokens": graph.n_pos,
        "active_features": int(graph.active_features.shape[0]),
        "feature_nodes": graph.n_features,
        "compute_batch_size": need.compute_batch_size,
        "seconds": time.perf_counter() - start,
        "peak_above_weights_bytes": peak,
        "estimate_bytes": need.total,
        "estimate": need.describe(),
        "within_estimate": peak <= need.total,
    }
    print(
        f"long prompt: {row['tokens']} tokens, {row['active_features']:,} active, "
        f"{row['feature_nodes']} feature nodes, {row['seconds']:.1f} s; peak above the weights "
        f"{peak / 2**30:.2f} GiB, estimate {need.describe()}",
        flush=True,
    )
    return row


if __name__ == "__main__":
    sys.exit(main())
