"""Benchmark: one long prompt through `GraphBuilder` at gemma-2-2b's shape, its peak memory by
phase against circuitmap's memory estimate.

Uses a world of bench/gemma_shapes.py (random weights, built under --root if missing) and runs the
real path (`GraphBuilder.build_full`: lean record, attribution, pruning, the record) on one prompt
of the world, sampling this process's RSS every 20 ms from a thread. Prints the RSS once the
weights are resident (every parameter touched), the peak RSS of each phase (forward pass,
attribution, forming the graph's rows, pruning), the estimate's parts, and the measured working
set (peak minus the resident weights) against the estimate's total.

    .venv/bin/python -m bench.long_prompt --layers 26 --live 256 --l0 1 --prompt-length 511 \\
        [--dtype bfloat16] [--max-feature-nodes 64] [--batch-size 16] [--memory-limit-gb 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path

import torch

from bench.peer.run_circuit_tracer import current_rss_bytes, peak_rss_bytes

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
GIB = 2**30


class RssSampler:
    """This process's peak RSS per phase: the kernel's high-water mark (VmHWM), reset at each
    phase boundary through /proc/self/clear_refs (so no short peak is missed); where that
    cannot be written, RSS sampled every `interval` seconds from a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.phase = interval, "load"
        self.peaks: dict[str, int] = {}
        self.exact = reset_peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> None:
        rss = peak_rss_bytes() if self.exact else current_rss_bytes()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)

    def enter(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        if self.exact:
            reset_peak()
        self.sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def phase_hooks(sampler: RssSampler) -> None:
    """Mark phase boundaries by wrapping the functions that start them."""
    import circuitmap.attribution as attribution
    import circuitmap.pipeline as pipeline
    from circuitmap.replacement import ReplacementModel

    def wrap(owner, name: str, phase: str, after: str | None = None) -> None:
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            sampler.enter(phase)
            try:
                return original(*args, **kwargs)
            finally:
                if after:
                    sampler.enter(after)

        setattr(owner, name, wrapped)

    wrap(ReplacementModel, "run", "forward", after="between")
    wrap(attribution.DirectEffects, "__init__", "attributing")
    wrap(attribution, "_graph_rows", "forming rows", after="attribution done")
    wrap(pipeline, "prune", "pruning", after="record")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="a", choices=["a", "b"])
    p.add_argument("--layers", type=int, default=26)
    p.add_argument("--features", type=int, default=16384)
    p.add_argument("--live", type=int, default=256)
    p.add_argument("--l0", type=int, default=1)
    p.add_argument("--shape", default="gemma-2-2b", choices=["gemma-2-2b", "smoke"])
    p.add_argument("--world-lengths", type=int, nargs="+", default=[511, 2047])
    p.add_argument("--prompt-length", type=int, default=511, help="words (BOS added)")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-feature-nodes", type=int, default=64)
    p.add_argument("--max-n-logits", type=int, default=10)
    p.add_argument("--memory-limit-gb", type=float, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--root", type=Path, default=Path("/tmp/circuitmap-bench-gemma"))
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from bench.gemma_shapes import GemmaSpec, build_world
    from circuitmap.pipeline import GraphBuilder, GraphSettings

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = GemmaSpec(
        case=args.case, n_layers=args.layers, n_features=args.features,
        prompt_lengths=tuple(args.world_lengths), shape=args.shape, live=args.live, l0=args.l0,
    )  # fmt: skip
    world = build_world(spec, args.root)
    prompt = next(p for p in world.prompts if len(p.split()) == args.prompt_length)
    settings = GraphSettings(
        dtype=args.dtype, batch_size=args.batch_size, max_feature_nodes=args.max_feature_nodes,
        max_n_logits=args.max_n_logits, memory_limit_gb=args.memory_limit_gb,
        transcoder_loading="lazy",
    )  # fmt: skip
    with RssSampler() as sampler:
        phase_hooks(sampler)
        t0 = time.perf_counter()
        builder = GraphBuilder.from_paths(str(world.model_dir), str(world.transcoder_dir), settings)
        load_seconds = time.perf_counter() - t0
        with torch.no_grad():  # page every weight in: the baseline is the resident model
            for param in builder.rm.model.parameters():
                param.view(-1)[:: 4096 // param.element_size()].float().sum()
        sampler.enter("weights resident")
        time.sleep(0.1)
        weights_rss = current_rss_bytes()
        start, cpu = time.perf_counter(), time.process_time()
        result = builder.build_full(prompt)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    graph = result.graph
    n_active = int(graph.active_features.shape[0])
    need = builder.check_memory(graph.n_pos, n_active_features=n_active)
    peak = max(sampler.peaks.values())
    doc = {
        "spec": spec.to_dict(),
        "settings": vars(args) | {"root": str(args.root), "out": str(args.out)},
        "tokens": graph.n_pos,
        "active_features": n_active,
        "feature_nodes": graph.n_features,
        "nodes": graph.n_nodes,
        "kept_nodes": int(result.pruned.node_mask.sum()),
        "compute_batch_size": need.compute_batch_size,
        "load_seconds": load_seconds,
        "graph_seconds": seconds,
        "graph_cpu_seconds": cpu,
        "weights_rss_bytes": weights_rss,
        "peak_rss_bytes": peak,
        "phase_peak_rss_bytes": sampler.peaks,
        "estimate_bytes": need.total,
        "estimate_parts": need.parts,
        "estimate_phases": {name: need.phase(name) for name in _phases()},
        "uptime": Path("/proc/loadavg").read_text().split()[:3],
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
    }
    print(f"{spec.name} {args.dtype}: {graph.n_pos} tokens, {n_active:,} active features, "
          f"{graph.n_features} feature nodes, {graph.n_nodes:,} nodes, compute batch "
          f"{need.compute_batch_size}; graph {seconds:.0f} s ({cpu:.0f} CPU s)")  # fmt: skip
    print(f"RSS with the weights resident {weights_rss / GIB:.2f} GiB; peak {peak / GIB:.2f} GiB")
    for phase, value in sampler.peaks.items():
        print(f"  peak in {phase:<18} {value / GIB:6.2f} GiB  (+{(value - weights_rss) / GIB:.2f})")
    print(f"measured working set {(peak - weights_rss) / GIB:.2f} GiB, estimate {need.describe()}")
    for name in _phases():
        print(f"  estimate of phase {name:<12} {need.phase(name) / GIB:6.2f} GiB")
    out = args.out or RESULTS / f"long-prompt-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"results: {out}")


def _phases() -> list[str]:
    from circuitmap.memory import _PHASES

    return list(_PHASES)


if __name__ == "__main__":
    main()
