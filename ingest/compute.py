"""Where graphs are computed: in this process, in a pool of processes, or as Ray tasks.

A `ComputeRecipe` names a factory and its arguments. It is plain data, so it travels to worker
processes and Ray actors, which build their own computer once and reuse it for every prompt.
Factories: "pipeline" (circuitmap.pipeline.GraphBuilder: the real attribution graphs),
"synthetic" (circuitmap.synthetic: random graphs of the same shape, for tests and benchmarks) or
"module:function" returning a `Computer`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from circuitmap.records import GraphRecord
from ingest.spec import GraphSpec


@dataclass
class Computer:
    """`compute(prompt text) -> GraphRecord`, and the spec every graph it makes carries."""

    compute: Callable[[str], GraphRecord]
    spec: GraphSpec


@dataclass(frozen=True)
class ComputeRecipe:
    factory: str = "pipeline"
    model: str | None = None
    transcoders: str | None = None
    settings: dict[str, object] = field(default_factory=dict, hash=False)

    def build(self) -> Computer:
        make = FACTORIES.get(self.factory) or _import(self.factory)
        return make(self.model, self.transcoders, dict(self.settings))


def pipeline_computer(
    model: str | None, transcoders: str | None, settings: dict[str, object]
) -> Computer:
    """The real attribution pipeline of circuitmap (loads the model and transcoders once)."""
    from circuitmap.pipeline import GraphBuilder, GraphSettings

    if not model or not transcoders:
        raise ValueError("give --model and --transcoders (paths or hub names)")
    builder = GraphBuilder.from_paths(model, transcoders, GraphSettings(**settings))
    spec = GraphSpec(builder.model_name, builder.transcoder_name, builder.settings.to_dict())
    return Computer(builder.build, spec)


def synthetic_computer(
    model: str | None, transcoders: str | None, settings: dict[str, object]
) -> Computer:
    """Random graphs of realistic shape (circuitmap.synthetic); settings may hold n_features,
    n_edges, n_layers."""
    from circuitmap.synthetic import SyntheticConfig, SyntheticGraphs

    shape = {k: int(v) for k, v in settings.items() if k in ("n_features", "n_edges", "n_layers")}
    graphs = SyntheticGraphs(model, transcoders, settings, config=SyntheticConfig(**shape))
    return Computer(graphs, GraphSpec(graphs.model, graphs.transcoder, dict(graphs.settings)))


FACTORIES: dict[str, Callable[..., Computer]] = {
    "pipeline": pipeline_computer,
    "synthetic": synthetic_computer,
}


def _import(path: str) -> Callable[..., Computer]:
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"compute factory {path!r}: use pipeline, synthetic or module:function")
    return getattr(importlib.import_module(module), name)


class Executor(Protocol):
    """Runs computations; `capacity` is how many may be in flight at once."""

    capacity: int
    spec: GraphSpec

    def submit(self, text: str) -> Future[GraphRecord]: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Computes in the calling thread (the writer still overlaps, in its own thread)."""

    capacity = 1

    def __init__(self, recipe: ComputeRecipe | Computer):
        self.computer = recipe if isinstance(recipe, Computer) else recipe.build()
        self.spec = self.computer.spec

    def submit(self, text: str) -> Future[GraphRecord]:
        future: Future[GraphRecord] = Future()
        try:
            future.set_result(self.computer.compute(text))
        except Exception as error:  # a failed prompt is data, reported by the worker
            future.set_exception(error)
        return future

    def close(self) -> None:
        pass


_computer: Computer | None = None


def _init_process(recipe: ComputeRecipe) -> None:
    global _computer
    _computer = recipe.build()


def _compute_in_process(text: str) -> GraphRecord:
    assert _computer is not None
    return _computer.compute(text)


def _spec_in_process() -> GraphSpec:
    assert _computer is not None
    return _computer.spec


class ProcessExecutor:
    """`n` processes on this machine, each holding its own model (spawned: safe with torch)."""

    def __init__(self, recipe: ComputeRecipe, n: int):
        import multiprocessing

        self.pool = ProcessPoolExecutor(
            n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process,
            initargs=(recipe,),
        )
        self.capacity = 2 * n
        self.spec = self.pool.submit(_spec_in_process).result()

    def submit(self, text: str) -> Future[GraphRecord]:
        return self.pool.submit(_compute_in_process, text)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class RayExecutor:
    """`n` Ray actors (one per GPU when `gpus` is 1), each holding its own model.

    `address` is a Ray cluster address ("auto", "ray://host:10001") or "local" to start a local
    instance. Prompts go to the actors in turn; results come back as futures.
    """

    def __init__(self, recipe: ComputeRecipe, address: str, n: int, gpus: float = 0.0):
        import ray

        if not ray.is_initialized():
            ray.init(address=None if address == "local" else address, log_to_driver=False)

        @ray.remote(num_gpus=gpus, num_cpus=1)
        class GraphActor:
            def __init__(self, recipe: ComputeRecipe):
                self.computer = recipe.build()

            def spec(self) -> GraphSpec:
                return self.computer.spec

            def compute(self, text: str) -> GraphRecord:
                return self.computer.compute(text)

        self.actors = [GraphActor.remote(recipe) for _ in range(n)]
        self.capacity = 2 * n
        self.spec = ray.get(self.actors[0].spec.remote())
        self._next = 0

    def submit(self, text: str) -> Future[GraphRecord]:
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        return actor.compute.remote(text).future()

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
