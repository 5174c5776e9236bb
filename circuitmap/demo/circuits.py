"""Automatic checks that the demo's attribution graphs show the circuits the corpus was built for.

**Two-hop** ("the capital of the state containing X is"): the check passes for a prompt when
1. *path*: the pruned graph has a path from the token X to the logit of X's capital, through a
   feature that stands for X's state S (`circuitmap.demo.concepts.state_concept`), every edge on
   it excitatory (weight > 0); and
2. *swap*: an intervention on the real model (attention frozen, as circuit-tracer's default) that
   sets every active S feature (any position) to 0 and sets, at the positions where S features
   were active, the features of another state S' to the activations they have on a donor prompt
   (the same question about a city of S' that the model answers right) makes S''s capital the top
   prediction. S' is the next state in the corpus's order.

**Addition** ("calc : a + b ="). The paper's addition circuit has two paths into the sum: one
for its units digit, one for its magnitude. Per prompt:
- *units path* (`passed`): the pruned graph has an excitatory path from an operand token to the
  sum's logit through a feature standing for the sum's units digit;
- *sum path*: the same through a feature standing for a sum within `SUM_TOLERANCE` of the answer;
- *swap*: setting those sum features to 0 and injecting the features of sums near s' = s + 10
  (s - 10 when b + 10 is past the largest operand) at their donor activations (donor prompt: b
  moved by 10) puts the top prediction within `SUM_TOLERANCE` of s'.

The graphs are the demo's own (`GraphBuilder` with the ingest's settings), so the fractions
reported here are about the graphs `circuitmap demo` stores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from circuitmap.demo.catalogue import FeatureCard
from circuitmap.demo.concepts import (
    SUM_TOLERANCE,
    DemoWorld,
    StateConcept,
    state_concept,
    sum_value,
    units_digit,
)
from circuitmap.interventions import Intervention, intervene
from circuitmap.pipeline import GraphBuilder
from circuitmap.records import GraphRecord

FeatureKey = tuple[int, int]  # (layer, index)


@dataclass
class Concepts:
    """The catalogue's state, units-digit and sum features (a feature gets at most one)."""

    states: dict[FeatureKey, StateConcept]
    units: dict[FeatureKey, int]
    sums: dict[FeatureKey, int]

    @classmethod
    def of(cls, cards: Iterable[FeatureCard], world: DemoWorld) -> Concepts:
        states, units, sums = {}, {}, {}
        for card in cards:
            key = (card.layer, card.index)
            if (state := state_concept(card, world)) is not None:
                states[key] = state
            elif (digit := units_digit(card)) is not None:
                units[key] = digit
            elif (value := sum_value(card)) is not None:
                sums[key] = value
        return cls(states, units, sums)

    def features_of_state(self, state: str) -> set[FeatureKey]:
        return {k for k, c in self.states.items() if c.state == state}

    def features_of_units(self, digit: int) -> set[FeatureKey]:
        return {k for k, d in self.units.items() if d == digit}

    def features_of_sum(self, value: int) -> set[FeatureKey]:
        """Sum features whose sum is within SUM_TOLERANCE of `value`."""
        return {k for k, v in self.sums.items() if abs(v - value) <= SUM_TOLERANCE}

    def summary(self) -> dict[str, object]:
        return {
            "state_features": len(self.states),
            "say_capital_features": sum(c.says_capital for c in self.states.values()),
            "states_covered": len({c.state for c in self.states.values()}),
            "units_features": len(self.units),
            "digits_covered": len(set(self.units.values())),
            "sum_features": len(self.sums),
            "sums_covered": len(set(self.sums.values())),
        }


# ---- graph paths --------------------------------------------------------------------------------


def on_excitatory_paths(record: GraphRecord, sources: Iterable[int], target: int) -> set[int]:
    """Indices of the nodes on some path from a source to `target` whose edges all have weight
    > 0 (sources and target included when such a path exists)."""
    positive = record.edge_weight > 0
    src, tgt = record.edge_source[positive], record.edge_target[positive]
    forward = _reach(set(sources), src, tgt)
    backward = _reach({target}, tgt, src)
    return forward & backward


def _reach(start: set[int], src: np.ndarray, tgt: np.ndarray) -> set[int]:
    out: dict[int, list[int]] = defaultdict(list)
    for s, t in zip(src.tolist(), tgt.tolist(), strict=True):
        out[s].append(t)
    seen, stack = set(start), list(start)
    while stack:
        for nxt in out[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _logit_index(record: GraphRecord, token: str) -> int | None:
    return next(
        (i for i, n in enumerate(record.nodes) if n.kind == "logit" and n.token == token), None
    )


def _token_indices(record: GraphRecord, tokens: set[str]) -> list[int]:
    return [i for i, n in enumerate(record.nodes) if n.kind == "token" and n.token in tokens]


def top_prediction(record: GraphRecord) -> str:
    logits = [n for n in record.nodes if n.kind == "logit"]
    return max(logits, key=lambda n: n.probability or 0.0).token if logits else ""


def features_on_path(
    record: GraphRecord, sources: set[str], answer: str, wanted: Iterable[FeatureKey]
) -> list[str]:
    """Node ids of the `wanted` features on an excitatory path from a token in `sources` to the
    logit of `answer` (empty when the answer is no logit node)."""
    target = _logit_index(record, answer)
    if target is None:
        return []
    wanted = set(wanted)
    nodes = on_excitatory_paths(record, _token_indices(record, sources), target)
    return sorted(
        record.nodes[i].node_id
        for i in nodes
        if record.nodes[i].kind == "feature"
        and (record.nodes[i].layer, record.nodes[i].feature_index) in wanted
    )


def without_features(record: GraphRecord, remove: Iterable[FeatureKey]) -> GraphRecord:
    """A copy of `record` without the nodes of some features (and their edges): the negative
    control of the path check."""
    remove = set(remove)
    keep = np.array(
        [not (n.kind == "feature" and (n.layer, n.feature_index) in remove) for n in record.nodes]
    )
    new_index = np.cumsum(keep) - 1
    edges = keep[record.edge_source] & keep[record.edge_target]
    return replace(
        record,
        nodes=[n for n, k in zip(record.nodes, keep, strict=True) if k],
        edge_source=new_index[record.edge_source[edges]],
        edge_target=new_index[record.edge_target[edges]],
        edge_weight=record.edge_weight[edges],
    )


# ---- interventions ------------------------------------------------------------------------------


@torch.no_grad()
def swap_prediction(
    builder: GraphBuilder,
    prompt: str,
    donor_prompt: str,
    remove: set[FeatureKey],
    insert: set[FeatureKey],
) -> str:
    """Top prediction after setting the `remove` features to 0 wherever active, and the `insert`
    features to their donor-prompt activations at the positions where `remove` features were."""
    rm = builder.rm
    run = rm.run(builder.tokenize(prompt))
    donor = rm.run(builder.tokenize(donor_prompt))
    if donor.n_pos != run.n_pos:
        raise ValueError(f"donor prompt {donor_prompt!r} is not aligned with {prompt!r}")
    interventions, positions = [], set()
    for layer, pos, index in run.activations.nonzero().tolist():
        if (layer, index) in remove:
            interventions.append(Intervention(layer, pos, index, value=0.0))
            positions.add(pos)
    for layer, pos, index in donor.activations.nonzero().tolist():
        if (layer, index) in insert and pos in positions:
            value = float(donor.activations[layer, pos, index])
            interventions.append(Intervention(layer, pos, index, value=value))
    logits = intervene(rm, run, interventions).logits if interventions else run.logits
    return builder.tokenizer.decode([int(logits[-1].argmax())])


def model_prediction(builder: GraphBuilder, prompt: str) -> str:
    logits = builder.rm.run(builder.tokenize(prompt)).logits
    return builder.tokenizer.decode([int(logits[-1].argmax())])


# ---- the checks ---------------------------------------------------------------------------------


@dataclass
class TwoHopCheck:
    prompt_id: str
    split: str
    city: str
    state: str
    answer: str
    predicted: str
    state_features: list[str]  # node ids of state-S features on a path from X to the answer
    say_capital_features: int  # how many of those are "say capital" features
    swap_state: str
    swap_answer: str
    swap_predicted: str

    @property
    def path(self) -> bool:
        return bool(self.state_features)

    @property
    def swap(self) -> bool:
        return self.swap_predicted == self.swap_answer

    @property
    def passed(self) -> bool:
        return self.path and self.swap


@dataclass
class AdditionCheck:
    prompt_id: str
    split: str
    a: int
    b: int
    answer: str
    predicted: str
    units_features: list[str]  # node ids of features for the answer's units digit on a path
    sum_features: list[str]  # node ids of features for sums near the answer on a path
    swap_answer: str  # the donor's sum (b moved by ten)
    swap_predicted: str

    @property
    def units_path(self) -> bool:
        return bool(self.units_features)

    @property
    def sum_path(self) -> bool:
        return bool(self.sum_features)

    @property
    def swap(self) -> bool:
        """The prediction lands on the donor's sum, up to the sum features' own tolerance."""
        if not self.swap_predicted.isdigit():
            return False
        return abs(int(self.swap_predicted) - int(self.swap_answer)) <= SUM_TOLERANCE

    @property
    def passed(self) -> bool:
        """The units-digit circuit (the paper's); `sum_path` and `swap` are the magnitude path."""
        return self.units_path


class TwoHopChecker:
    """Runs the two-hop check; donors (one correctly answered city per state) are cached."""

    def __init__(self, builder: GraphBuilder, world: DemoWorld, concepts: Concepts):
        self.builder, self.world, self.concepts = builder, world, concepts
        self._donors: dict[str, str | None] = {}

    def partner(self, state: str) -> str:
        names = list(self.world.states)
        return names[(names.index(state) + 1) % len(names)]

    def donor(self, state: str, template: str, city: str) -> str | None:
        """The two-hop question about the first city of `state` the model answers right."""
        if state not in self._donors:
            capital, cities = self.world.states[state]
            self._donors[state] = next(
                (
                    template.replace(city, c)
                    for c in cities
                    if model_prediction(self.builder, template.replace(city, c)) == capital
                ),
                None,
            )
        return self._donors[state]

    def check(self, prompt: dict, record: GraphRecord) -> TwoHopCheck:
        meta = prompt["metadata"]
        city, state, answer = meta["city"], meta["state"], prompt["answer"]
        own = self.concepts.features_of_state(state)
        on_path = features_on_path(record, {city}, answer, own)
        say = sum(self.concepts.states[_key(record, n)].says_capital for n in on_path)
        other = self.partner(state)
        donor = self.donor(other, prompt["text"], city)
        swapped = ""
        if donor is not None:
            swapped = swap_prediction(
                self.builder, prompt["text"], donor, own, self.concepts.features_of_state(other)
            )
        return TwoHopCheck(
            prompt["id"], _split(prompt), city, state, answer, top_prediction(record), on_path,
            say, other, self.world.capital(other), swapped,
        )  # fmt: skip


def check_addition(
    prompt: dict,
    record: GraphRecord,
    concepts: Concepts,
    builder: GraphBuilder | None = None,
    max_operand: int = 99,
) -> AdditionCheck:
    """The path checks; with a `builder`, also the swap of the sum features for those of the
    sum ten higher (ten lower when b + 10 is past `max_operand`)."""
    meta = prompt["metadata"]
    a, b, answer = int(meta["a"]), int(meta["b"]), prompt["answer"]
    operands = {str(a), str(b)}
    units = features_on_path(record, operands, answer, concepts.features_of_units(int(answer) % 10))
    sums = features_on_path(record, operands, answer, concepts.features_of_sum(int(answer)))
    shift = 10 if b + 10 <= max_operand else -10
    swap_answer, swapped = str(a + b + shift), ""
    if builder is not None:
        donor = prompt["text"].replace(f"+ {b} =", f"+ {b + shift} =")
        remove = concepts.features_of_sum(a + b)
        insert = concepts.features_of_sum(a + b + shift) - remove
        swapped = swap_prediction(builder, prompt["text"], donor, remove, insert)
    return AdditionCheck(
        prompt["id"], _split(prompt), a, b, answer, top_prediction(record), units, sums,
        swap_answer, swapped,
    )  # fmt: skip


def _key(record: GraphRecord, node_id: str) -> FeatureKey:
    node = record.nodes[record.node_index()[node_id]]
    return (node.layer, int(node.feature_index))


def _split(prompt: dict) -> str:
    return "heldout" if "heldout" in prompt["tags"] else "train"


# ---- the report ---------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """Fractions per task and split, mean graph scores per task, and every prompt's result."""

    concepts: dict[str, object]
    two_hop: dict[str, dict[str, float]] = field(default_factory=dict)
    addition: dict[str, dict[str, float]] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    two_hop_prompts: list[dict] = field(default_factory=list)
    addition_prompts: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def summarise(
    checks: Sequence[TwoHopCheck | AdditionCheck], parts: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per split (and "all"): n, answered correctly, and the fraction passing each part."""
    out = {}
    for split in ("train", "heldout", "all"):
        group = [c for c in checks if split in ("all", c.split)]
        if not group:
            continue
        row: dict[str, float] = {"n": len(group)}
        row["correct"] = sum(c.predicted == c.answer for c in group) / len(group)
        for part in parts:
            row[part] = sum(bool(getattr(c, part)) for c in group) / len(group)
        out[split] = row
    return out


def score_summary(
    prompts: Sequence[dict], records: Sequence[GraphRecord]
) -> dict[str, dict[str, float]]:
    """Mean replacement and completeness score per task (and over all prompts)."""
    groups: dict[str, list[GraphRecord]] = defaultdict(list)
    for prompt, record in zip(prompts, records, strict=True):
        groups[prompt["tags"][0]].append(record)
        groups["all"].append(record)
    return {
        task: {
            "n": len(rs),
            "replacement": float(np.mean([r.scores["replacement"] for r in rs])),
            "completeness": float(np.mean([r.scores["completeness"] for r in rs])),
        }
        for task, rs in groups.items()
    }
