"""The demo's stages in order: model -> CLT -> feature catalogue -> circuit checks.

Each is a cached stage (`circuitmap.demo.artifacts.cached_stage`): the model under
`$CIRCUITMAP_HOME/demo/`, the CLT beside it, the catalogue and the check report inside the CLT's
directory. A stage's hash covers its inputs and the directory names of the stages it reads, so a
retrained model retrains the CLT, and a second run with nothing changed builds nothing. A stage
built under another home (`demo_roots`: the user's, this checkout's test home) is copied, not
rebuilt, and `find_built_demo` reads a complete demo wherever it is.

The check stage computes the attribution graph of every demo prompt; `DemoBuild.graphs` hands
them on (prompt text -> GraphRecord) so that storing them does not compute them again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from circuitmap.demo.artifacts import (
    DemoModelSpec,
    adopt_stage,
    build_demo_model,
    cached_stage,
    demo_model_dir,
    demo_root,
    demo_roots,
    is_built,
    stage_dir,
    torch_threads,
)
from circuitmap.demo.catalogue import (
    CatalogueConfig,
    FeatureCard,
    auto_label,
    build_catalogue,
    catalogue_dir,
    load_catalogue,
)
from circuitmap.demo.circuits import (
    AdditionCheck,
    CheckReport,
    Concepts,
    TwoHopCheck,
    TwoHopChecker,
    check_addition,
    score_summary,
    summarise,
)
from circuitmap.demo.clt import DemoCltSpec, build_demo_clt, clt_dir
from circuitmap.demo.concepts import DemoWorld, concept_label
from circuitmap.demo.corpus import load_corpus, read_jsonl
from circuitmap.demo.train import DEMO_PROMPTS_FILE
from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.records import GraphRecord

CHECKS_STAGE_VERSION = 2
CHECKS_FILE = "checks.json"
# Bump when `demo_label` changes.
LABEL_VERSION = 3


@dataclass
class DemoBuild:
    model_dir: Path
    clt_dir: Path
    catalogue_dir: Path
    checks_dir: Path
    built: list[str] = field(default_factory=list)  # stages built by this call
    graphs: dict[str, GraphRecord] = field(default_factory=dict)  # computed by this call

    @property
    def prompts_file(self) -> Path:
        return self.model_dir / DEMO_PROMPTS_FILE

    def prompts(self) -> list[dict]:
        return read_jsonl(self.prompts_file)

    def cards(self) -> list[FeatureCard]:
        return load_catalogue(self.catalogue_dir)

    def checks(self) -> dict[str, object]:
        return json.loads((self.checks_dir / CHECKS_FILE).read_text())


def demo_label(card: FeatureCard, world: DemoWorld) -> str:
    """The concept a feature stands for (if any), then what it reads and says."""
    concept = concept_label(card, world)
    return f"{concept} · {auto_label(card)}" if concept else auto_label(card)


def catalogue_texts(model_dir: Path) -> list[str]:
    """The sentences searched for top contexts: every corpus sentence once (held-out ones too:
    the catalogue describes the model, it trains nothing)."""
    return list(dict.fromkeys(e.text for e in load_corpus(model_dir).examples))


def build_demo(
    *,
    model_spec: DemoModelSpec | None = None,
    clt_spec: DemoCltSpec | None = None,
    settings: GraphSettings | None = None,
    root: Path | None = None,
    threads: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    reuse: Sequence[Path] | None = None,
) -> DemoBuild:
    """Every stage, built where missing, or copied from the same stage built under one of the
    `reuse` roots (default: the other `demo_roots()`). `log` hears which stage is being built or
    copied."""
    settings = settings or GraphSettings()
    root = (root or demo_root()).expanduser()
    sources = [r for r in demo_roots() if r != root.resolve()] if reuse is None else reuse

    def adopt(path: Path, what: str) -> None:
        found = adopt_stage(path, root, sources)
        if found is not None:
            log(f"reusing the {what} built under {found.parent}")

    built = []
    model_dir = demo_model_dir(model_spec, root)
    adopt(model_dir, "demo model")
    if not is_built(model_dir):
        log("training the demo model")
        built.append("model")
    model_dir = build_demo_model(model_spec, root=root, progress=progress)
    adopt(clt_dir(model_dir, clt_spec), "demo CLT")
    if not is_built(clt_dir(model_dir, clt_spec)):
        log("training the demo CLT")
        built.append("clt")
    clt = build_demo_clt(model_dir, clt_spec, progress=progress)
    world = DemoWorld.of(load_corpus(model_dir).config)
    texts = catalogue_texts(model_dir)
    adopt(catalogue_dir(clt, texts, CatalogueConfig(), LABEL_VERSION), "feature catalogue")
    if not is_built(catalogue_dir(clt, texts, CatalogueConfig(), LABEL_VERSION)):
        log("computing the feature catalogue")
        built.append("catalogue")
    catalogue = build_catalogue(
        model_dir, clt, texts, label=lambda c: demo_label(c, world),
        label_version=LABEL_VERSION, threads=threads,
    )  # fmt: skip
    graphs: dict[str, GraphRecord] = {}
    check_inputs = _checks_inputs(catalogue, settings)

    def build_checks(out: Path) -> None:
        log("computing the demo prompts' graphs and checking their circuits")
        with torch_threads(threads):
            report = run_checks(model_dir, clt, load_catalogue(catalogue), settings, graphs)
        (out / CHECKS_FILE).write_text(json.dumps(report.to_dict(), indent=1) + "\n")

    adopt(stage_dir("checks", CHECKS_STAGE_VERSION, check_inputs, clt), "circuit checks")
    if not is_built(stage_dir("checks", CHECKS_STAGE_VERSION, check_inputs, clt)):
        built.append("checks")
    checks = cached_stage("checks", CHECKS_STAGE_VERSION, check_inputs, build_checks, root=clt)
    return DemoBuild(model_dir, clt, catalogue, checks, built, graphs)


def _checks_inputs(catalogue: Path, settings: GraphSettings) -> dict[str, object]:
    """The catalogue (which pins the model and CLT) and the settings that shape a graph (not
    where or in what batches it is computed; `to_dict` leaves out the machine-side settings at
    their defaults, so adding one to GraphSettings does not orphan the checks built before)."""
    shaping = {k: v for k, v in settings.to_dict().items() if k not in ("batch_size", "device")}
    return {"catalogue": catalogue.name, "settings": shaping}


def run_checks(
    model_dir: Path,
    clt: Path,
    cards: list[FeatureCard],
    settings: GraphSettings,
    graphs: dict[str, GraphRecord] | None = None,
    prompts: list[dict] | None = None,
) -> CheckReport:
    """Graphs of the demo prompts (added to `graphs`), their scores and the circuit checks."""
    builder = GraphBuilder.from_paths(str(model_dir), str(clt), settings)
    config = load_corpus(model_dir).config
    world = DemoWorld.of(config)
    concepts = Concepts.of(cards, world)
    prompts = prompts if prompts is not None else read_jsonl(model_dir / DEMO_PROMPTS_FILE)
    graphs = graphs if graphs is not None else {}
    records = []
    for prompt in prompts:
        if prompt["text"] not in graphs:
            graphs[prompt["text"]] = builder.build(prompt["text"])
        records.append(graphs[prompt["text"]])
    two_hop_checker = TwoHopChecker(builder, world, concepts)
    two_hop: list[TwoHopCheck] = []
    addition: list[AdditionCheck] = []
    for prompt, record in zip(prompts, records, strict=True):
        task = prompt["tags"][0]
        if task == "two_hop":
            two_hop.append(two_hop_checker.check(prompt, record))
        elif task == "addition":
            addition.append(check_addition(prompt, record, concepts, builder, config.max_operand))
    return CheckReport(
        concepts=concepts.summary(),
        two_hop=summarise(two_hop, ("path", "swap", "passed")),
        addition=summarise(addition, ("units_path", "sum_path", "swap", "passed")),
        scores=score_summary(prompts, records),
        two_hop_prompts=[asdict(c) | {"passed": c.passed} for c in two_hop],
        addition_prompts=[asdict(c) | {"passed": c.passed} for c in addition],
    )


def demo_paths(root: Path | None = None) -> tuple[Path, Path] | None:
    """(model directory, CLT directory) of the default demo if both are built, else None (for
    commands that default to the demo, like `circuitmap trace`)."""
    model_dir = demo_model_dir(None, root)
    clt = clt_dir(model_dir)
    return (model_dir, clt) if is_built(model_dir) and is_built(clt) else None


def find_built_demo(roots: Sequence[Path] | None = None) -> DemoBuild | None:
    """The default demo's artefacts from the first of `roots` (default: `demo_roots()`) where every
    stage is built, read in place (nothing is built or copied), else None."""
    for root in demo_roots() if roots is None else roots:
        found = built_demo(root)
        if found is not None:
            return found
    return None


def built_demo(root: Path | None = None) -> DemoBuild | None:
    """The default demo's artefacts if every stage is built (nothing is built here), else None."""
    paths = demo_paths(root)
    if paths is None:
        return None
    model_dir, clt = paths
    catalogue = catalogue_dir(clt, catalogue_texts(model_dir), CatalogueConfig(), LABEL_VERSION)
    checks = stage_dir(
        "checks", CHECKS_STAGE_VERSION, _checks_inputs(catalogue, GraphSettings()), clt
    )
    if not (is_built(catalogue) and is_built(checks)):
        return None
    return DemoBuild(model_dir, clt, catalogue, checks)
