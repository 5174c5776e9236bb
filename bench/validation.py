"""Swap validation on the demo with ground-truth supernodes: how well can a swap work at all?

    .venv/bin/python -m bench.validation --strength 1 4 6 --remove-scale 0 -1

Each state (two_hop) and units digit (addition) gets the supernode of *all* its features by the
demo's own concept rules (`circuitmap.demo.concepts`, every layer), so the figures bound from above
what a suggested supernode can reach with the same intervention. Each concept is swapped for the
next one in the corpus's order on its own prompts, through the code `circuitmap validate` runs
(`ingest.validation.SupernodeIntervention`), for every combination of `--strength` and
`--remove-scale`; success is the test `python -m bench.corpus demo` applies (the other state's
capital, a sum ending in the other digit). Donors: the tag's `--max-donors` prompts in which most
of the other's features are active (as `circuitmap validate`, counted here on the full forward pass
instead of the stored pruned graphs). Needs the built demo only (no database).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch

from circuitmap.interventions import FeatureKey
from ingest.validation import (
    GroupFeatures,
    SupernodeIntervention,
    ValidationPrompt,
    ValidationSpec,
)

TASKS = ("two_hop", "addition")


def concept_groups(task: str, concepts, world) -> dict[str, set[FeatureKey]]:
    if task == "two_hop":
        return {s: concepts.features_of_state(s) for s in world.states}
    return {str(u): concepts.features_of_units(u) for u in range(10)}


def concept_of(task: str, row: dict) -> str:
    return row["metadata"]["state"] if task == "two_hop" else str(int(row["answer"]) % 10)


def succeeded(task: str, expected: str, top: str) -> bool:
    if task == "two_hop":
        return top == expected
    return top.isdigit() and int(top) % 10 == int(expected)


def group(name: str, keys: set[FeatureKey]) -> GroupFeatures:
    ordered = tuple(sorted(keys))
    return GroupFeatures(name, tuple(f"{layer}/{index}" for layer, index in ordered), ordered)


def donors_for(builder, keys: set[FeatureKey], prompts: list[ValidationPrompt], n: int):
    """The `n` prompts in which most of `keys` are active (ties by graph uid)."""
    active = {}
    for p in prompts:
        acts = builder.rm.run(builder.tokenize(p.prompt)).activations
        active[p.graph_uid] = sum(bool((acts[layer, :, index] > 0).any()) for layer, index in keys)
    ranked = sorted(prompts, key=lambda p: (-active[p.graph_uid], p.graph_uid))
    return tuple(ranked[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strength", type=float, nargs="+", default=[1.0])
    parser.add_argument("--remove-scale", type=float, nargs="+", default=[0.0])
    parser.add_argument("--task", choices=TASKS, action="append")
    parser.add_argument("--max-donors", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from circuitmap.demo.catalogue import CatalogueConfig, catalogue_dir, load_catalogue
    from circuitmap.demo.circuits import Concepts
    from circuitmap.demo.concepts import DemoWorld
    from circuitmap.demo.corpus import load_corpus, read_jsonl
    from circuitmap.demo.stages import LABEL_VERSION, catalogue_texts, demo_paths
    from circuitmap.demo.train import DEMO_PROMPTS_FILE
    from circuitmap.pipeline import GraphBuilder

    found = demo_paths(Path("~/.circuitmap/demo").expanduser())
    if not found:
        raise SystemExit("the demo is not built: run `circuitmap demo` first")
    model_dir, clt_dir = found
    cards = load_catalogue(
        catalogue_dir(clt_dir, catalogue_texts(model_dir), CatalogueConfig(), LABEL_VERSION)
    )
    world = DemoWorld.of(load_corpus(model_dir).config)
    concepts = Concepts.of(cards, world)
    builder = GraphBuilder.from_paths(str(model_dir), str(clt_dir))
    rows = read_jsonl(model_dir / DEMO_PROMPTS_FILE)
    for task in args.task or TASKS:
        tagged = [r for r in rows if r["tags"][0] == task]
        prompts = [
            ValidationPrompt(r["id"], r["text"], r["answer"], tuple(r["tags"])) for r in tagged
        ]
        concept = {p.graph_uid: concept_of(task, r) for p, r in zip(prompts, tagged, strict=True)}
        groups = concept_groups(task, concepts, world)
        order = list(groups)
        expected = {c: world.capital(c) if task == "two_hop" else c for c in order}
        donors = {
            c: donors_for(builder, groups[c], prompts, args.max_donors) for c in order if groups[c]
        }
        for strength, remove_scale in itertools.product(args.strength, args.remove_scale):
            start = time.perf_counter()
            counts = {"train": [0, 0], "heldout": [0, 0]}
            for c in order:
                other = order[(order.index(c) + 1) % len(order)]
                if not groups[c] or not groups[other]:
                    continue
                spec = ValidationSpec(
                    group(c, groups[c]), task, "demo", "demo", other=group(other, groups[other]),
                    donors=donors[other], strength=strength, remove_scale=remove_scale,
                )  # fmt: skip
                runner = SupernodeIntervention(builder, spec)
                for p in prompts:
                    if concept[p.graph_uid] != c:
                        continue
                    split = "heldout" if "heldout" in p.tags else "train"
                    top = runner.outcome(p).top_after
                    counts[split][0] += succeeded(task, expected[other], top)
                    counts[split][1] += 1
            shown = ", ".join(
                f"{split} {ok}/{n} ({ok / max(n, 1):.0%})" for split, (ok, n) in counts.items()
            )
            print(
                f"{task}: strength {strength:g}, remove scale {remove_scale:g}: the other "
                f"concept's answer in {shown} [{time.perf_counter() - start:.0f} s]",
                flush=True,
            )


if __name__ == "__main__":
    main()
