"""Where demo artefacts live, and when they are rebuilt.

Every stage of the demo (model, later the CLT and its feature catalogue) is a directory
`$CIRCUITMAP_HOME/demo/<stage>-<hash>`, where the hash covers the stage's inputs: its configs, its
code version, and the directory names of the stages it reads (which carry their own hashes). So a
changed input rebuilds that stage and everything after it, and an unchanged one is reused. A stage
is built in a temporary directory and renamed into place with its manifest, so an interrupted
build never looks finished.

Because a stage's directory name pins its inputs, a stage built under another home is the same
stage: `build_demo` copies it in rather than training again (`adopt_stage`), and the tests read
the user's artefacts in place. `demo_roots` lists where to look: this home, the user's default home
and the test home of this checkout (`make test` builds there; `make demo` uses ~/.circuitmap).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from circuitmap.demo.corpus import CorpusConfig, build_corpus
from circuitmap.demo.model import ModelConfig
from circuitmap.demo.train import TrainConfig, save_trained, train_model

MANIFEST = "stage.json"
# Bump when the code changes what the stage produces for the same configs.
MODEL_STAGE_VERSION = 1
DEFAULT_HOME = "~/.circuitmap"
# The home `make test` and tests/conftest.py give the tests when none is chosen (a checkout's).
CHECKOUT_TEST_HOME = Path(__file__).resolve().parents[2] / ".circuitmap" / "test"


def circuitmap_home() -> Path:
    return Path(os.environ.get("CIRCUITMAP_HOME", DEFAULT_HOME)).expanduser()


def demo_root() -> Path:
    return circuitmap_home() / "demo"


def demo_roots() -> list[Path]:
    """Where built demo stages may be found, this home's first: $CIRCUITMAP_HOME/demo, the user's
    ~/.circuitmap/demo and this checkout's test home (each once)."""
    homes = [circuitmap_home(), Path(DEFAULT_HOME).expanduser(), CHECKOUT_TEST_HOME]
    return list(dict.fromkeys(home.resolve() / "demo" for home in homes))


def adopt_stage(path: Path, root: Path, sources: Sequence[Path]) -> Path | None:
    """Copy the stage at `path` (inside `root`) from the first of `sources` that holds it built
    at the same place, if it is not built here; returns where it came from (None: not copied).
    Copied like a build (a temporary directory renamed into place), so a copy cut short is never
    taken for a built stage."""
    if is_built(path):
        return None
    relative = path.relative_to(root)
    found = next((s / relative for s in sources if is_built(s / relative)), None)
    if found is None or found.resolve() == path.resolve():
        return None
    _fill_into_place(path, lambda tmp: _copy_stage(found, tmp))
    return found


def _copy_stage(source: Path, tmp: Path) -> None:
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(".*.tmp-*"))


def content_hash(inputs: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-able inputs (key order does not matter)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stage_dir(name: str, version: int, inputs: Mapping[str, Any], root: Path | None = None) -> Path:
    return (root or demo_root()) / f"{name}-{content_hash({'version': version, **inputs})}"


def is_built(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def cached_stage(
    name: str,
    version: int,
    inputs: Mapping[str, Any],
    build: Callable[[Path], None],
    *,
    root: Path | None = None,
    rebuild: bool = False,
) -> Path:
    """Return the stage's directory, calling `build(tmp_dir)` to fill it first if it is missing."""
    final = stage_dir(name, version, inputs, root)
    if is_built(final) and not rebuild:
        return final

    def fill(tmp: Path) -> None:
        tmp.mkdir()
        build(tmp)
        manifest = {"stage": name, "version": version, "inputs": inputs, "built_at": time.time()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    _fill_into_place(final, fill, replace=rebuild)
    return final


def _fill_into_place(final: Path, fill: Callable[[Path], None], replace: bool = False) -> None:
    """`fill(tmp)` a temporary directory beside `final` (it must leave the manifest there), then
    rename it to `final`: a fill cut short never looks built. An unfinished `final` is replaced,
    a built one only with `replace`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        fill(tmp)
        if final.exists() and (replace or not is_built(final)):
            shutil.rmtree(final)
        try:
            tmp.rename(final)
        except OSError:
            if not is_built(final):  # not a concurrent builder that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Training always runs on one thread: torch's reductions differ with the thread count, and an
# artefact's folder name (the hash of its inputs) must determine its contents.
TRAINING_THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with n intra-op threads (None: leave torch's setting), restoring the old value after."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class DemoModelSpec:
    """All inputs of the demo model stage."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def demo_model_dir(spec: DemoModelSpec | None = None, root: Path | None = None) -> Path:
    """Where the model for `spec` lives (built or not)."""
    return stage_dir("model", MODEL_STAGE_VERSION, asdict(spec or DemoModelSpec()), root)


def build_demo_model(
    spec: DemoModelSpec | None = None,
    *,
    root: Path | None = None,
    progress: bool = True,
    rebuild: bool = False,
) -> Path:
    """The demo model's directory (Hugging Face files, demo_prompts.jsonl, training.json), trained
    here if it is not cached yet."""
    spec = spec or DemoModelSpec()

    def build(out: Path) -> None:
        corpus = build_corpus(spec.corpus)
        with torch_threads(TRAINING_THREADS):
            result = train_model(corpus, spec.model, spec.train, progress=progress)
        save_trained(result, corpus, spec.model, spec.train, out)

    return cached_stage(
        "model", MODEL_STAGE_VERSION, asdict(spec), build, root=root, rebuild=rebuild
    )
