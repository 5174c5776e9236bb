"""Benchmark: circuitmap vs circuit-tracer 0.5.0 on the same model, transcoders and prompts.

For each size, builds (or reuses, under --root) a random Llama-style model with a word-level
tokenizer and calibrated JumpReLU transcoders written in circuit-tracer's format
(`bench/fixtures.py`), then computes every prompt's graph with both tools, each in its own
process (ours under this interpreter, circuit-tracer under `.venv-peer`, see `make peer-venv`), so
each peak-memory figure is that tool's alone. Prints, per size, graphs/s of each tool, the time
ratio, peak memory (RSS; CUDA allocator peak on GPU) and the equality check
(`bench/equality.py`), and writes everything as JSON under bench/results/.

    .venv/bin/python -m bench.attribution --sizes xs,s [--kind clt|plt|both] [--device cuda]
        [--dtype float32] [--batch-size 64] [--threads 1] [--max-feature-nodes N]

Times are per graph after one untimed warm-up graph (model and transcoders already loaded), wall
and CPU time (the "(cpu)" speedup is the robust one on a shared machine); each tool gets the same
settings, batch size and thread count. Peak memory is each worker's own
VmHWM (peak RSS since its exec): the rusage of a child (`wait4`, RUSAGE_CHILDREN) would not do,
because Linux carries the parent's peak RSS at fork time into the child's ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from bench.equality import compare
from bench.fixtures import World, WorldSpec, build_world
from bench.peer.run_circuit_tracer import peak_rss_bytes

REPO = Path(__file__).resolve().parent.parent
PEER_PYTHON = REPO / ".venv-peer" / "bin" / "python"
PEER_SCRIPT = REPO / "bench" / "peer" / "run_circuit_tracer.py"
RESULTS = REPO / "bench" / "results"

SIZES: dict[str, WorldSpec] = {
    spec.name: spec
    for spec in [
        WorldSpec("xs", n_layers=4, d_model=128, n_features=2048, prompt_lengths=(8, 32)),
        WorldSpec("s", n_layers=6, d_model=256, n_features=4096, prompt_lengths=(8, 32)),
        WorldSpec("m", n_layers=8, d_model=512, n_features=8192, prompt_lengths=(16, 64)),
        WorldSpec(
            "l", n_layers=12, d_model=768, n_features=16384, n_heads=12, prompt_lengths=(32, 128)
        ),
    ]
}
#: Feature-node caps (most influential first, as circuit-tracer's CLI does with its default of
#: 7500) that keep the larger sizes to minutes per graph on a 2-core CPU; --max-feature-nodes
#: overrides them.
SIZE_CAPS: dict[str, int] = {"m": 2048, "l": 2048}


@dataclass
class ToolRun:
    """One tool's graphs for one world, with what its process cost."""

    graphs: list[dict]
    load_seconds: float
    peak_rss_bytes: int  # the child's VmHWM
    cuda_peak_bytes: int | None
    wall_seconds: float  # the whole child process, start to exit

    @property
    def graph_seconds(self) -> float:
        return sum(g["seconds"] for g in self.graphs)

    @property
    def cpu_seconds(self) -> float:
        return sum(g["cpu_seconds"] for g in self.graphs)


def run_child(cmd: list[str], out: Path, env: dict | None = None) -> ToolRun:
    """Run a worker to completion and read its graphs and the figures it measured on itself."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}): {' '.join(cmd)}")
    return read_run(out, time.perf_counter() - start)


def read_run(out: Path, wall_seconds: float) -> ToolRun:
    data = torch.load(out, weights_only=False)
    return ToolRun(
        graphs=data["graphs"],
        load_seconds=data["load_seconds"],
        peak_rss_bytes=data["peak_rss_bytes"],
        cuda_peak_bytes=data.get("cuda_peak_bytes"),
        wall_seconds=wall_seconds,
    )


@dataclass
class RunSettings:
    """What both tools are given: graph settings and the machine side (device, dtype, threads)."""

    max_n_logits: int = 10
    desired_logit_prob: float = 0.95
    batch_size: int = 64
    max_feature_nodes: int | None = None
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 1
    peer_python: Path = PEER_PYTHON

    def worker_args(self) -> list[str]:
        cap = self.max_feature_nodes
        return [
            "--max-n-logits", str(self.max_n_logits),
            "--desired-logit-prob", str(self.desired_logit_prob),
            "--batch-size", str(self.batch_size),
            "--device", self.device,
            "--dtype", self.dtype,
            "--threads", str(self.threads),
            *([] if cap is None else ["--max-feature-nodes", str(cap)]),
        ]  # fmt: skip


def run_tools(
    world: World, settings: RunSettings, workdir: Path, reuse_peer: bool = False
) -> tuple[ToolRun, ToolRun]:
    """(ours, circuit-tracer's) runs on one world. With `reuse_peer`, circuit-tracer's graphs
    from an earlier run with the very same command and prompts are read back instead (it is the
    slow side, and it does not change)."""
    workdir.mkdir(parents=True, exist_ok=True)
    prompts = workdir / "prompts.json"
    prompts.write_text(json.dumps(world.prompts))
    common = [
        "--model", str(world.model_dir),
        "--transcoders", str(world.transcoder_dir.resolve()),
        "--prompts", str(prompts),
        *settings.worker_args(),
    ]  # fmt: skip
    ours_out, peer_out = workdir / "ours.pt", workdir / "peer.pt"
    env = {"PYTHONPATH": str(REPO)}
    ours = run_child(
        [sys.executable, "-m", "bench.attribution", "--worker", *common, "--out", str(ours_out)],
        ours_out,
        env,
    )
    peer_cmd = [str(settings.peer_python), str(PEER_SCRIPT), *common, "--out", str(peer_out)]
    stamp = workdir / "peer-run.json"
    done = json.loads(stamp.read_text()) if stamp.exists() else {}
    key = {"cmd": peer_cmd, "prompts": world.prompts}
    if reuse_peer and peer_out.exists() and {k: done.get(k) for k in key} == key:
        return ours, read_run(peer_out, done["wall_seconds"])
    stamp.unlink(missing_ok=True)
    peer = run_child(peer_cmd, peer_out, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    stamp.write_text(json.dumps({**key, "wall_seconds": peer.wall_seconds}))
    return ours, peer


def check(world: World, ours: ToolRun, peer: ToolRun) -> list[dict]:
    return [
        compare(a, b, world.spec.n_layers).to_dict()
        for a, b in zip(ours.graphs, peer.graphs, strict=True)
    ]


# --- our worker (runs in its own process) ------------------------------------------------------


def worker(argv: list[str]) -> None:
    """Compute our graphs for the prompts and save them in the equality check's format."""
    p = argparse.ArgumentParser()
    for name in ("--model", "--transcoders", "--prompts", "--out", "--device", "--dtype"):
        p.add_argument(name, required=True)
    p.add_argument("--max-n-logits", type=int, default=10)
    p.add_argument("--desired-logit-prob", type=float, default=0.95)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--max-feature-nodes", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from circuitmap.attribution import attribute
    from circuitmap.models import load_model, resolve_dtype, tokenize
    from circuitmap.replacement import ReplacementModel
    from circuitmap.transcoders import load_transcoder

    device = torch.device(args.device)
    dtype = resolve_dtype(args.dtype)
    t0 = time.perf_counter()
    model, tokenizer = load_model(args.model, device=args.device, dtype=dtype)
    rm = ReplacementModel(model, load_transcoder(args.transcoders, device=device, dtype=dtype))
    load_seconds = time.perf_counter() - t0
    prompts = json.loads(Path(args.prompts).read_text())
    settings = dict(
        max_n_logits=args.max_n_logits,
        desired_logit_prob=args.desired_logit_prob,
        batch_size=args.batch_size,
        max_feature_nodes=args.max_feature_nodes,
    )

    def graph(prompt: str):
        return attribute(rm, tokenize(tokenizer, prompt), **settings)

    for prompt in prompts[: args.warmup]:
        graph(prompt)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    graphs = []
    for prompt in prompts:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu = time.perf_counter(), time.process_time()
        g = graph(prompt)
        if device.type == "cuda":
            torch.cuda.synchronize()
        graphs.append(
            {
                "adjacency": g.adjacency.float().cpu(),
                "active_features": g.active_features.cpu().long(),
                "activation_values": g.activation_values.float().cpu(),
                "selected_features": g.selected_features.cpu().long(),
                "logit_token_ids": g.logit_tokens.cpu().long(),
                "logit_probabilities": g.logit_probabilities.float().cpu(),
                "input_tokens": g.input_ids.cpu().long(),
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu,
            }
        )
    torch.save(
        {
            "tool": "circuitmap",
            "graphs": graphs,
            "load_seconds": load_seconds,
            "peak_rss_bytes": peak_rss_bytes(),
            "cuda_peak_bytes": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
        },
        args.out,
    )


# --- the benchmark -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="xs,s", help=f"comma-separated, from {','.join(SIZES)}")
    p.add_argument("--kind", default="clt", choices=["clt", "plt", "both"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--max-feature-nodes", type=int, default=None, help=f"default: {SIZE_CAPS}, else all"
    )
    p.add_argument("--max-n-logits", type=int, default=10)
    p.add_argument("--desired-logit-prob", type=float, default=0.95)
    p.add_argument("--threads", type=int, default=1, help="torch threads in each tool")
    p.add_argument("--prompts-per-length", type=int, default=2)
    p.add_argument(
        "--prompt-lengths", type=int, nargs="+", help="words per prompt, overriding the sizes'"
    )
    p.add_argument("--root", type=Path, default=Path("/tmp/circuitmap-bench"), help="worlds cache")
    p.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    p.add_argument(
        "--reuse-peer",
        action="store_true",
        help="reuse circuit-tracer's graphs of an identical run",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON results (default bench/results/)")
    args = p.parse_args(argv)
    unknown = [s for s in args.sizes.split(",") if s not in SIZES]
    if unknown:
        p.error(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
    if not args.peer_python.exists():
        p.error(f"{args.peer_python} not found: run `make peer-venv` first")
    return args


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = RunSettings(
        max_n_logits=args.max_n_logits,
        desired_logit_prob=args.desired_logit_prob,
        batch_size=args.batch_size,
        max_feature_nodes=args.max_feature_nodes,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        peer_python=args.peer_python,
    )
    kinds = ["clt", "plt"] if args.kind == "both" else [args.kind]
    rows = []
    header = (
        f"{'size':<7}{'L':>3}{'d':>5}{'F/layer':>8}{'tokens':>8}{'cap':>6}{'nodes':>7}"
        f"{'ours g/s':>10}{'ct g/s':>9}{'speedup':>8}{'(cpu)':>7}{'ours MiB':>10}{'ct MiB':>9}"
        "  equality"
    )
    print(header, flush=True)
    for name in args.sizes.split(","):
        for kind in kinds:
            spec = replace(SIZES[name], kind=kind)
            if args.prompt_lengths:
                spec = replace(spec, prompt_lengths=tuple(args.prompt_lengths))
            label = f"{name}-{kind}"
            world = build_world(spec, args.root / label, args.prompts_per_length)
            cap = args.max_feature_nodes or SIZE_CAPS.get(name)
            size_settings = replace(settings, max_feature_nodes=cap)
            workdir = args.root / label / "run"
            ours, peer = run_tools(world, size_settings, workdir, args.reuse_peer)
            checks = check(world, ours, peer)
            ours_gps = len(ours.graphs) / ours.graph_seconds
            peer_gps = len(peer.graphs) / peer.graph_seconds
            worst = max(checks, key=lambda c: (not c["passed"], c["rel_max"] or 0.0))
            mem = "cuda_peak_bytes" if args.device.startswith("cuda") else "peak_rss_bytes"
            row = {
                "size": label,
                "spec": spec.to_dict(),
                "max_feature_nodes": cap,
                "n_tokens": [len(g["input_tokens"]) for g in peer.graphs],
                "n_nodes": [int(g["adjacency"].shape[0]) for g in peer.graphs],
                "ours": _tool_dict(ours),
                "circuit_tracer": _tool_dict(peer),
                "speedup": peer.graph_seconds / ours.graph_seconds,
                "cpu_speedup": peer.cpu_seconds / ours.cpu_seconds,
                "equality": checks,
                "all_equal": all(c["passed"] for c in checks),
            }
            rows.append(row)
            tokens = f"{min(row['n_tokens'])}-{max(row['n_tokens'])}"
            nodes = max(row["n_nodes"])
            print(
                f"{label:<7}{spec.n_layers:>3}{spec.d_model:>5}{spec.n_features:>8}{tokens:>8}"
                f"{cap or '-':>6}"
                f"{nodes:>7}{ours_gps:>10.3f}{peer_gps:>9.3f}{row['speedup']:>7.2f}x"
                f"{row['cpu_speedup']:>6.2f}x"
                f"{mib(getattr(ours, mem)):>10}{mib(getattr(peer, mem)):>9}  "
                f"{'all equal' if row['all_equal'] else 'DIFFER'} (worst rel_max "
                f"{worst['rel_max'] if worst['rel_max'] is not None else float('nan'):.1e})",
                flush=True,
            )
            for c in checks:
                if not c["passed"]:
                    print(f"    {compare_summary(c)}")
    out = args.out or RESULTS / f"attribution-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch": torch.__version__,
        },
        "results": rows,
    }
    out.write_text(json.dumps(doc, indent=2))
    print(f"results: {out}")


def compare_summary(c: dict) -> str:
    from bench.equality import Equality

    return Equality(**c).summary()


def _tool_dict(run: ToolRun) -> dict:
    return {
        "graph_seconds": [g["seconds"] for g in run.graphs],
        "graph_cpu_seconds": [g["cpu_seconds"] for g in run.graphs],
        "load_seconds": run.load_seconds,
        "peak_rss_bytes": run.peak_rss_bytes,
        "cuda_peak_bytes": run.cuda_peak_bytes,
        "process_seconds": run.wall_seconds,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
