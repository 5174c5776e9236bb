"""Corpus circuits: how long suggestion and validation take, end to end, as the CLI runs them.

    .venv/bin/python -m bench.corpus suggest --graphs 1000
    .venv/bin/python -m bench.corpus validate --supernode NAME --swap-with OTHER --tag two_hop
    .venv/bin/python -m bench.corpus demo [--no-swaps] [--resolution R]

`suggest` writes `--graphs` synthetic graphs (realistic size, all tagged `suggest-bench`; those
already written are skipped, so a second run only measures) and times each step of suggestion:
the tag's graphs, the answer-path features (library query), where each is active, the corpus
edges among them, and the grouping. Target (issue 14): under 30 s for 1,000 graphs.

`demo` judges the suggestions for the demo's two_hop and addition graphs by the demo's own
concept rules (states and units digits recovered) and, unless `--no-swaps`, validates the best
suggestion of each concept by a swap with the next concept's.

`validate` times one validation run over the tag's prompts in the database (the demo's, stored by
`circuitmap demo`), model and transcoder loading included; the run's stored results are deleted
first, so that every prompt is computed. Target: under 60 s for 100 demo prompts.
Uses the database of the environment (NEO4J_URI or the local server).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.synthetic_corpus import write_synthetic_corpus
from circuitmap.synthetic import STATES, SyntheticConfig
from db.connection import Neo4jHandle, open_handle
from db.schema import ensure_schema
from ingest.aggregate import Aggregator

BENCH_TAG = "suggest-bench"
DELETE_RUN = """
MATCH (v:Validation {uid: $uid})
OPTIONAL MATCH (v)-[:HAS_RESULT]->(r)
DETACH DELETE v, r
"""


def bench_prompts(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Two-hop prompts about random cities, all tagged BENCH_TAG."""
    rng = np.random.default_rng(seed)
    cities = [(city, capital) for capital, cs in STATES.values() for city in cs]
    rows = []
    for i in range(n):
        city, capital = cities[int(rng.integers(len(cities)))]
        text = f"the capital of the state containing {city} is"
        row = {"id": f"sb{seed}-{i:05d}", "text": f"{text} ({i})", "answer": capital}
        rows.append({**row, "tags": [BENCH_TAG]})
    return rows


def ensure_corpus(handle: Neo4jHandle, n: int, config: SyntheticConfig) -> None:
    write_synthetic_corpus(handle, bench_prompts(n), config, report_every=100)
    Aggregator(handle).fold_all()


def bench_suggest(
    handle: Neo4jHandle, n: int, edges: int, repeats: int, min_strength: float
) -> None:
    from circuitmap.grouping import group_features
    from queries import corpus

    ensure_schema(handle)
    ensure_corpus(handle, n, SyntheticConfig(n_features=300, n_edges=edges))
    for repeat in range(repeats):
        search = corpus.PathSearch(min_strength=min_strength, timeout_s=300)
        mark = time.perf_counter()
        graphs = corpus.tagged_graphs(handle, BENCH_TAG)
        paths = corpus.answer_path_features(handle, BENCH_TAG, len(graphs), search)
        path_s = time.perf_counter() - mark
        mark = time.perf_counter()
        inputs = corpus.suggestion_inputs(handle, BENCH_TAG, search)
        inputs_s = time.perf_counter() - mark
        mark = time.perf_counter()
        groups = group_features(inputs.corpus)
        grouping_s = time.perf_counter() - mark
        print(
            f"run {repeat + 1}: {len(graphs)} graphs, {len(paths)} answer-path features "
            f"(min strength {min_strength:g}), {len(groups)} suggestions: suggestion took "
            f"{inputs_s + grouping_s:.1f} s (target < 30 s): reading its inputs {inputs_s:.1f} s "
            f"(of which answer_path_features alone {path_s:.1f} s when run by itself), "
            f"grouping {grouping_s:.2f} s"
        )


def bench_validate(handle: Neo4jHandle, supernode: str, tag: str, args: argparse.Namespace) -> None:
    import torch

    from circuitmap.pipeline import GraphBuilder
    from ingest.validation import run_validation
    from queries.corpus import validation_inputs, validation_results

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    inputs = validation_inputs(
        handle, supernode, tag, args.scale, args.swap_with,
        strength=args.strength, remove_scale=args.remove_scale,
    )  # fmt: skip
    handle.write(DELETE_RUN, {"uid": inputs.spec.uid})
    read = time.perf_counter() - start
    builder = GraphBuilder.from_paths(inputs.model_path, inputs.tc_path)
    loaded = time.perf_counter() - start - read
    report = run_validation(handle, builder, inputs.spec, inputs.prompts)
    total = time.perf_counter() - start
    results = validation_results(handle, report.uid)
    present = results[results["present"]]
    print(
        f"validation of {supernode} ({inputs.spec.kind}) over {report.computed} prompts of "
        f"{tag!r} ({args.threads} torch threads, load average {os.getloadavg()[0]:.1f}): "
        f"{total:.1f} s in all (target < 60 s for 100): inputs {read:.2f} s, model and "
        f"transcoder {loaded:.2f} s, interventions and writes {total - read - loaded:.1f} s; "
        f"success in {int(present['success'].sum())} of {len(present)} prompts where it is active"
    )


# ---- the demo: do suggestions recover the concepts, and do their swaps work? ------------------


@dataclass
class ConceptRecovery:
    """Per concept (a state, a units digit): the suggestion most of whose members are its
    features, by the demo's own concept rules, and how pure and complete it is."""

    concept: str
    n_features: int  # the concept's features among the answer-path features
    suggestion: int | None  # index of the purest suggestion holding its features
    purity: float  # share of that suggestion's members that are the concept's
    recall: float  # share of the concept's answer-path features in it

    @property
    def recovered(self) -> bool:
        return self.purity >= RECOVERED_PURITY


RECOVERED_PURITY = 0.8


def concept_recovery(
    suggestions: list, features_of: dict[str, set[tuple[int, int]]], on_paths: set
) -> list[ConceptRecovery]:
    out = []
    for concept, own in features_of.items():
        scored = [
            (len(own & set(s.keys)) / len(s.keys), len(own & set(s.keys)), i)
            for i, s in enumerate(suggestions)
            if own & set(s.keys)
        ]
        n_own = len(own & on_paths)
        if not scored:
            out.append(ConceptRecovery(concept, n_own, None, 0.0, 0.0))
            continue
        purity, hit, index = max(scored)
        out.append(ConceptRecovery(concept, n_own, index, purity, hit / max(n_own, 1)))
    return out


def save_group(handle: Neo4jHandle, name: str, uids: list[str], description: str) -> None:
    """(Re)create the supernode `name` with exactly these members."""
    from queries.supernodes import create_supernode, delete_supernode, get_supernode

    found = get_supernode(handle, name)
    if found is not None and sorted(found.members) == sorted(uids):
        return
    if found is not None:
        delete_supernode(handle, name)
    create_supernode(handle, name, description=description, members=uids)


def same_text(expected: str, top: str) -> bool:
    return top == expected


def same_units_digit(expected: str, top: str) -> bool:
    return top.isdigit() and int(top) % 10 == int(expected)


def swap_rates(
    handle: Neo4jHandle,
    builder,
    tag: str,
    pairs: dict[str, str],
    prompts_of: dict[str, set[str]],
    expected: dict[str, str],
    matches,
) -> dict[str, dict[str, int]]:
    """Validate supernode a swapped with pairs[a] on a's prompts; counts per split."""
    from ingest.validation import run_validation
    from queries.corpus import validation_inputs, validation_results

    counts = {split: {"n": 0, "ok": 0} for split in ("train", "heldout")}
    for name, other in pairs.items():
        inputs = validation_inputs(handle, name, tag, other=other)
        chosen = [p for p in inputs.prompts if p.prompt in prompts_of[name]]
        report = run_validation(handle, builder, inputs.spec, chosen)
        results = validation_results(handle, report.uid)
        for row in results.itertuples():
            if row.prompt not in prompts_of[name]:
                continue
            split = "heldout" if "heldout" in row.tags else "train"
            counts[split]["n"] += 1
            counts[split]["ok"] += bool(matches(expected[other], row.top_after))
    return counts


def bench_demo(
    handle: Neo4jHandle,
    resolution: float,
    directions: bool,
    only: list[str] | None = None,
    swaps: bool = True,
) -> dict[str, object]:
    """Suggestions for two_hop and addition, judged by the demo's concept rules, and (unless
    `swaps` is False) the swaps of the recovered supernodes; prints and returns the figures."""
    from circuitmap.demo.catalogue import CatalogueConfig, catalogue_dir, load_catalogue
    from circuitmap.demo.circuits import Concepts
    from circuitmap.demo.concepts import DemoWorld
    from circuitmap.demo.corpus import load_corpus, read_jsonl
    from circuitmap.demo.stages import LABEL_VERSION, catalogue_texts, demo_paths
    from circuitmap.demo.train import DEMO_PROMPTS_FILE
    from circuitmap.grouping import GroupingSettings
    from circuitmap.pipeline import GraphBuilder
    from queries.corpus import suggest_supernodes, suggestion_inputs

    # the demo's model, CLT and catalogue where they are built (nothing is built here)
    roots = [Path(os.environ.get("CIRCUITMAP_HOME", "~/.circuitmap")), Path("~/.circuitmap")]
    found = [demo_paths(r.expanduser() / "demo") for r in roots]
    if not any(found):
        raise SystemExit("the demo is not built: run `circuitmap demo` first")
    model_dir, clt_dir = next(f for f in found if f)
    catalogue = catalogue_dir(clt_dir, catalogue_texts(model_dir), CatalogueConfig(), LABEL_VERSION)
    cards = load_catalogue(catalogue)
    world = DemoWorld.of(load_corpus(model_dir).config)
    concepts = Concepts.of(cards, world)
    builder = GraphBuilder.from_paths(str(model_dir), str(clt_dir))
    transcoder = builder.rm.transcoder if directions else None
    settings = GroupingSettings(resolution=resolution)
    rows = read_jsonl(model_dir / DEMO_PROMPTS_FILE)
    figures: dict[str, object] = {}
    tasks = {
        "two_hop": (
            {s: concepts.features_of_state(s) for s in world.states},
            lambda row: row["metadata"]["state"],
            {s: world.capital(s) for s in world.states},
        ),
        "addition": (
            {str(u): concepts.features_of_units(u) for u in range(10)},
            lambda row: str(int(row["answer"]) % 10),
            None,
        ),
    }
    for tag, (features_of, concept_of, capital) in tasks.items():
        if only and tag not in only:
            continue
        start = time.perf_counter()
        inputs = suggestion_inputs(handle, tag)
        suggestions = suggest_supernodes(inputs, settings, transcoder)
        seconds = time.perf_counter() - start
        on_paths = {(int(layer), int(index)) for layer, index in inputs.keys}
        recovery = concept_recovery(suggestions, features_of, on_paths)
        found = [r for r in recovery if r.recovered]
        print(
            f"{tag}: {len(inputs.graphs)} graphs, {len(on_paths)} answer-path features, "
            f"{len(suggestions)} suggestions in {seconds:.1f} s; concepts recovered (purity >= "
            f"{RECOVERED_PURITY:.0%}): {len(found)} of {len(recovery)}"
        )
        for r in recovery:
            print(
                f"  {r.concept:>14}: {r.n_features} features on paths, best suggestion "
                f"{r.suggestion} purity {r.purity:.2f} recall {r.recall:.2f}"
            )
        # Every concept with a suggestion holding its features gets that suggestion as its
        # supernode (recovered or not: the swap is measured either way, and reported apart).
        figures[tag] = {"recovered": len(found), "concepts": len(recovery)}
        if not swaps:
            continue
        best = {r.concept: r.suggestion for r in recovery if r.suggestion is not None}
        names = {c: f"demo-{tag}-{c}" for c in best}
        for c, index in best.items():
            s = suggestions[index]
            save_group(handle, names[c], s.uids, f"suggested {tag}: {s.label}")
        order = list(features_of)
        partner = {c: order[(order.index(c) + 1) % len(order)] for c in order}
        pairs = {
            names[c]: names[partner[c]]
            for c in names
            if partner[c] in names and best[partner[c]] != best[c]
        }
        recovered_pairs = {
            names[r.concept] for r in found if partner[r.concept] in {f.concept for f in found}
        }
        prompts_of = {
            names[c]: {r["text"] for r in rows if r["tags"][0] == tag and concept_of(r) == c}
            for c in names
        }
        # what a swap into concept c must name: c's capital, or a number ending in digit c
        expected = {names[c]: capital[c] if capital else c for c in names}
        matches = same_text if capital else same_units_digit
        start = time.perf_counter()
        n_prompts = sum(1 for r in rows if r["tags"][0] == tag)
        figures[tag]["pairs"] = len(pairs)
        for which, chosen in (
            ("all pairs", pairs),
            ("recovered pairs", {a: b for a, b in pairs.items() if a in recovered_pairs}),
        ):
            counts = swap_rates(handle, builder, tag, chosen, prompts_of, expected, matches)
            seconds = time.perf_counter() - start
            for split, c in counts.items():
                rate = c["ok"] / c["n"] if c["n"] else float("nan")
                print(
                    f"  swap, {which} ({len(chosen)}, {seconds:.0f} s): {split}: names the "
                    f"other concept's answer in {c['ok']} of {c['n']} prompts ({rate:.0%}); "
                    f"the task has {n_prompts} demo prompts"
                )
            figures[tag][which] = counts
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("suggest")
    s.add_argument("--graphs", type=int, default=1000)
    s.add_argument("--edges", type=int, default=5000)
    s.add_argument("--repeats", type=int, default=2)
    s.add_argument("--min-strength", type=float, default=0.001)
    v = sub.add_parser("validate")
    v.add_argument("--supernode", required=True)
    v.add_argument("--tag", default="two_hop")
    v.add_argument("--swap-with", default=None)
    v.add_argument("--scale", type=float, default=None)
    v.add_argument("--strength", type=float, default=1.0)
    v.add_argument("--remove-scale", type=float, default=0.0)
    v.add_argument("--threads", type=int, default=1)
    d = sub.add_parser("demo")
    d.add_argument("--resolution", type=float, default=1.0)
    d.add_argument("--no-directions", action="store_true")
    d.add_argument("--task", action="append", help="two_hop or addition (default: both)")
    d.add_argument("--no-swaps", action="store_true", help="only judge the suggestions")
    args = parser.parse_args()
    with open_handle() as handle:
        if args.what == "suggest":
            bench_suggest(handle, args.graphs, args.edges, args.repeats, args.min_strength)
        elif args.what == "demo":
            bench_demo(
                handle, args.resolution, not args.no_directions, args.task, not args.no_swaps
            )
        else:
            bench_validate(handle, args.supernode, args.tag, args)


if __name__ == "__main__":
    main()
