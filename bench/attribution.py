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

At gemma-2-2b's shapes (bench/gemma_shapes.py: case a, a 16k PLT; case b, a 16k CLT whose
decoders are 26.5 GB in bfloat16), one case per run, each tool killed past an RSS cap:

    .venv/bin/python -m bench.attribution --gemma --case b [--layers 26] [--prompt-lengths 16 64]
        [--tools ours,ct] [--dtype bfloat16] [--max-feature-nodes 7500] [--rss-cap-gb 12]

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
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from bench.equality import compare
from bench.fixtures import World, WorldSpec, build_world
from bench.peer.run_circuit_tracer import current_rss_bytes, peak_rss_bytes

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
    load_rss_bytes: int | None = None  # RSS after loading (ours only)

    @property
    def graph_seconds(self) -> float:
        return sum(g["seconds"] for g in self.graphs)

    @property
    def cpu_seconds(self) -> float:
        return sum(g["cpu_seconds"] for g in self.graphs)


def run_child(
    cmd: list[str],
    out: Path,
    env: dict | None = None,
    timeout: float | None = None,
    rss_cap_bytes: int | None = None,
) -> ToolRun:
    """Run a worker to completion and read its graphs and the figures it measured on itself.
    With `timeout` or `rss_cap_bytes`, a worker running longer or growing larger is killed (a
    shared machine must not run out of memory) and RuntimeError says which limit it hit."""
    start = time.perf_counter()
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=REPO)
    peak, killed = 0, None
    while proc.poll() is None:
        rss = _rss_of(proc.pid)
        peak = max(peak, rss)
        if rss_cap_bytes and rss > rss_cap_bytes:
            killed = f"its RSS passed the cap of {rss_cap_bytes / 2**30:.1f} GiB"
        elif timeout and time.perf_counter() - start > timeout:
            killed = f"it ran past {timeout:.0f} s"
        if killed:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"worker killed: {killed} (RSS seen {peak / 2**30:.2f} GiB)")
        time.sleep(0.2)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}): {' '.join(cmd)}")
    return read_run(out, time.perf_counter() - start)


def _rss_of(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def read_run(out: Path, wall_seconds: float) -> ToolRun:
    data = torch.load(out, weights_only=False)
    return ToolRun(
        graphs=data["graphs"],
        load_seconds=data["load_seconds"],
        peak_rss_bytes=data["peak_rss_bytes"],
        cuda_peak_bytes=data.get("cuda_peak_bytes"),
        wall_seconds=wall_seconds,
        load_rss_bytes=data.get("load_rss_bytes"),
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

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSettings:
        """The settings a command line gives (the ones it lacks at their defaults)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

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
    common = worker_common(world, settings, workdir)
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


def worker_common(
    world: World, settings: RunSettings, workdir: Path, extra: list[str] | None = None
) -> list[str]:
    """The arguments both tools' workers get (the prompts written to `workdir`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    prompts = workdir / "prompts.json"
    prompts.write_text(json.dumps(world.prompts))
    return [
        "--model", str(world.model_dir),
        "--transcoders", str(world.transcoder_dir.resolve()),
        "--prompts", str(prompts),
        *(extra or []),
        *settings.worker_args(),
    ]  # fmt: skip


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
    p.add_argument("--transcoder-loading", default="auto", choices=["auto", "eager", "lazy"])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from circuitmap.attribution import attribute
    from circuitmap.memory import estimate
    from circuitmap.models import load_model, resolve_dtype, tokenize
    from circuitmap.replacement import ReplacementModel
    from circuitmap.transcoders import load_transcoder

    device = torch.device(args.device)
    dtype = resolve_dtype(args.dtype)
    t0 = time.perf_counter()
    model, tokenizer = load_model(args.model, device=args.device, dtype=dtype)
    lazy = {"auto": None, "eager": False, "lazy": True}[args.transcoder_loading]
    tc = load_transcoder(args.transcoders, device=device, dtype=dtype, lazy=lazy)
    rm = ReplacementModel(model, tc)
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

    load_rss = current_rss_bytes()

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
        need = estimate(
            rm,
            g.n_pos,
            batch_size=args.batch_size,
            max_feature_nodes=args.max_feature_nodes,
            max_n_logits=args.max_n_logits,
            n_active_features=int(g.active_features.shape[0]),
        )
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
                "estimate_bytes": need.total,
                "estimate": need.describe(),
            }
        )
    torch.save(
        {
            "tool": "circuitmap",
            "graphs": graphs,
            "load_seconds": load_seconds,
            "load_rss_bytes": load_rss,
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
    settings = RunSettings.from_args(args)
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


# --- gemma-2-2b shapes (bench/gemma_shapes.py) ------------------------------------------------


def parse_gemma_args(argv: list[str]) -> argparse.Namespace:
    from bench.gemma_shapes import SHAPES

    p = argparse.ArgumentParser(description="circuitmap vs circuit-tracer at gemma-2-2b shapes")
    p.add_argument("--case", default="a", choices=["a", "b"], help="a: 16k PLT, b: 16k CLT")
    p.add_argument("--layers", type=int, default=26, help="depth (26 is gemma-2-2b's)")
    p.add_argument("--features", type=int, default=16384)
    p.add_argument(
        "--live", type=int, default=None, help="features per layer that can fire (sparse files)"
    )
    p.add_argument("--shape", default="gemma-2-2b", choices=sorted(SHAPES))
    p.add_argument("--prompt-lengths", type=int, nargs="+", default=[16, 64])
    p.add_argument("--tools", default="ours,ct", help="ours, ct or both (comma-separated)")
    p.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-feature-nodes", type=int, default=7500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=0, help="untimed graphs first (each tool)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per tool run")
    p.add_argument("--rss-cap-gb", type=float, default=12.0, help="kill a tool above this RSS")
    p.add_argument("--root", type=Path, default=Path("/tmp/circuitmap-bench-gemma"))
    p.add_argument("--peer-python", type=Path, default=PEER_PYTHON)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def main_gemma(argv: list[str]) -> None:
    """One case at gemma-2-2b's shape: each tool in its own process, killed past the RSS cap or
    the timeout (reported as such); time per graph, peak RSS (and RSS after loading), our
    memory estimate, and the equality check where both tools ran."""
    from bench.gemma_shapes import GemmaSpec
    from bench.gemma_shapes import build_world as build_gemma_world

    args = parse_gemma_args(argv)
    spec = GemmaSpec(
        case=args.case,
        n_layers=args.layers,
        n_features=args.features,
        prompt_lengths=tuple(args.prompt_lengths),
        shape=args.shape,
        live=args.live,
    )
    t0 = time.perf_counter()
    world = build_gemma_world(spec, args.root)
    print(f"world {spec.name}: {time.perf_counter() - t0:.0f} s to build or find", flush=True)
    settings = RunSettings.from_args(args)
    lengths = "-".join(str(n) for n in spec.prompt_lengths)
    workdir = args.root / "run" / f"{spec.name}-live{spec.live}-{args.dtype}-p{lengths}"
    common = worker_common(world, settings, workdir, ["--warmup", str(args.warmup)])
    tools = {
        "ours": [sys.executable, "-m", "bench.attribution", "--worker", *common],
        "ct": [str(args.peer_python), str(PEER_SCRIPT), *common],
    }
    env = {
        "ours": {"PYTHONPATH": str(REPO)},
        "ct": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    }
    runs: dict[str, ToolRun | str] = {}
    for tool in args.tools.split(","):
        out = workdir / f"{tool}.pt"
        try:
            runs[tool] = run_child(
                [*tools[tool], "--out", str(out)],
                out,
                env[tool],
                timeout=args.timeout,
                rss_cap_bytes=int(args.rss_cap_gb * 2**30),
            )
        except RuntimeError as error:
            runs[tool] = str(error).split(": [", 1)[0].split(": /", 1)[0]
        print(f"{tool}: {_gemma_summary(runs[tool])}", flush=True)
    ours, peer = runs.get("ours"), runs.get("ct")
    rows = []
    for i, prompt in enumerate(world.prompts):
        row: dict = {"prompt_words": len(prompt.split())}
        for tool, run in runs.items():
            if isinstance(run, ToolRun):
                g = run.graphs[i]
                row[tool] = {
                    "seconds": g["seconds"],
                    "cpu_seconds": g["cpu_seconds"],
                    "n_nodes": int(g["adjacency"].shape[0]),
                    "n_active": int(g["active_features"].shape[0]),
                    "estimate_bytes": g.get("estimate_bytes"),
                }
        if isinstance(ours, ToolRun) and isinstance(peer, ToolRun):
            row["equality"] = compare(ours.graphs[i], peer.graphs[i], spec.n_layers).to_dict()
        rows.append(row)
    _print_gemma_table(spec, args, runs, rows)
    out = args.out or RESULTS / f"attribution-gemma-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "spec": {**spec.to_dict(), "d_model": spec.d_model},
        "settings": {k: str(v) for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "runs": {
            t: (_tool_dict(r) | {"load_rss_bytes": r.load_rss_bytes})
            if isinstance(r, ToolRun)
            else r
            for t, r in runs.items()
        },
        "graphs": rows,
    }
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"results: {out}")


def _gemma_summary(run: ToolRun | str) -> str:
    if isinstance(run, str):
        return run
    return (
        f"load {run.load_seconds:.1f} s, RSS after load {mib(run.load_rss_bytes)} MiB, "
        f"peak {mib(run.peak_rss_bytes)} MiB, process {run.wall_seconds:.0f} s"
    )


def _print_gemma_table(spec, args, runs: dict, rows: list[dict]) -> None:
    print(
        f"case {spec.case} ({spec.kind}, {spec.n_features} features/layer), {spec.n_layers} "
        f"layers, d_model {spec.d_model}, {args.dtype}, batch {args.batch_size}, "
        f"max_feature_nodes {args.max_feature_nodes}, {args.threads} threads"
    )
    print(f"{'tokens':>7}{'active':>8}{'nodes':>7}{'ours s':>9}{'ct s':>9}{'speedup':>9}"
          f"{'ours est MiB':>13}  equality")  # fmt: skip
    for row in rows:
        o, c = row.get("ours", {}), row.get("ct", {})
        speed = c["seconds"] / o["seconds"] if o and c else None
        eq = row.get("equality")
        verdict = "-" if eq is None else ("equal" if eq["passed"] else "DIFFER")
        if eq is not None and eq.get("rel_max") is not None:
            verdict += f" (rel_max {eq['rel_max']:.1e})"
        any_run = o or c
        print(
            f"{row['prompt_words'] + 1:>7}{any_run.get('n_active', 0):>8}"
            f"{any_run.get('n_nodes', 0):>7}"
            f"{o.get('seconds', float('nan')):>9.1f}{c.get('seconds', float('nan')):>9.1f}"
            f"{(f'{speed:.2f}x' if speed else '-'):>9}{mib(o.get('estimate_bytes')):>13}  {verdict}"
        )
    for tool, run in runs.items():
        print(f"  {tool}: {_gemma_summary(run)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--gemma":
        main_gemma(sys.argv[2:])
    else:
        main()
