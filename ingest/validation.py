"""Validate a supernode by intervening on it in every prompt of a tag, and store what happened.

A run either scales the supernode's features (`scale`, -1 inhibits, 0 removes) or swaps it for
another supernode: its features are scaled by `remove_scale` (0: removed) and the other's are
injected at `strength` times their mean activation over donor prompts (prompts of the tag where
the other's features are active), at the same positions counted from the prompt's end, whether or
not they are active in the prompt itself (`circuitmap.interventions.group_interventions`).

Stored shape (docs/schema.md):
`(:Validation {uid, supernode, kind, scale, other, strength, remove_scale, tag, members,
other_members, expected, model_uid, transcoder_uid, created_at})-[:VALIDATES]->(:Supernode)`,
`-[:SWAPS_WITH]->(:Supernode)` for a swap, and one `(:ValidationResult {uid, graph_uid, prompt,
answer, tags, present, p_before, p_after, top_before, top_after, changed, success})` per prompt,
`(v)-[:HAS_RESULT]->(r)` and `(r)-[:ON_GRAPH]->(:Graph)`. The run's uid hashes everything that
decides its outcome (the supernodes' members, strength and remove_scale included), so re-running
finds the results already stored and computes only the prompts missing: resumable, and a second
complete run adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from circuitmap.interventions import (
    FeatureKey,
    answer_token_id,
    donor_activations,
    group_interventions,
    intervene,
)
from circuitmap.pipeline import GraphBuilder
from db.connection import Neo4jHandle

# A swap names the other supernode's answer when at least this share of its donors agree on one.
EXPECTED_ANSWER_SHARE = 0.5
# A swap's defaults (strength, remove_scale): inject the donors' mean, remove the supernode.
SWAP_DEFAULTS = (1.0, 0.0)

MERGE_RUN = """
MERGE (v:Validation {uid: $uid})
  ON CREATE SET v += $props, v.created_at = datetime()
WITH v
MATCH (s:Supernode {name: $supernode})
MERGE (v)-[:VALIDATES]->(s)
WITH v
OPTIONAL MATCH (o:Supernode {name: $other})
FOREACH (_ IN CASE WHEN o IS NULL THEN [] ELSE [1] END | MERGE (v)-[:SWAPS_WITH]->(o))
"""

DONE_GRAPHS = """
MATCH (:Validation {uid: $uid})-[:HAS_RESULT]->(r:ValidationResult)
RETURN r.graph_uid AS graph_uid
"""

STORE_RESULTS = """
MATCH (v:Validation {uid: $uid})
UNWIND $rows AS row
MERGE (v)-[:HAS_RESULT]->(r:ValidationResult {uid: row.uid})
  ON CREATE SET r += row
WITH r, row
MATCH (g:Graph {uid: row.graph_uid})
MERGE (r)-[:ON_GRAPH]->(g)
"""


@dataclass(frozen=True)
class GroupFeatures:
    """A supernode's members: catalog uids and their (layer, index) in the transcoder."""

    name: str
    uids: tuple[str, ...]
    keys: tuple[FeatureKey, ...]

    def __post_init__(self) -> None:
        if not self.uids:
            raise ValueError(f"supernode {self.name!r} has no member features")


@dataclass(frozen=True)
class ValidationPrompt:
    graph_uid: str
    prompt: str
    answer: str | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationSpec:
    """One validation run: `scale` the supernode, or swap it with `other` (donors given): its
    features scaled by `remove_scale`, the other's injected at `strength` x their donor means."""

    supernode: GroupFeatures
    tag: str
    model_uid: str
    transcoder_uid: str
    scale: float | None = None
    other: GroupFeatures | None = None
    donors: tuple[ValidationPrompt, ...] = ()
    strength: float = 1.0
    remove_scale: float = 0.0

    def __post_init__(self) -> None:
        if (self.scale is None) == (self.other is None):
            raise ValueError("a validation takes exactly one of --scale and --swap-with")
        swap_options = (self.strength, self.remove_scale) != SWAP_DEFAULTS
        if self.other is None and swap_options:
            raise ValueError("--strength and --remove-scale apply to a swap (--swap-with) only")
        if not self.strength > 0:
            raise ValueError(f"the injection strength must be positive, not {self.strength}")
        if self.other is not None and not self.donors:
            raise ValueError(
                f"no prompt of tag {self.tag!r} has a feature of {self.other.name!r} active: "
                "nothing to take its activations from"
            )

    @property
    def kind(self) -> str:
        return "scale" if self.other is None else "swap"

    @property
    def expected(self) -> str | None:
        """For a swap: the answer most donors share (at least EXPECTED_ANSWER_SHARE), if any."""
        answers = [d.answer for d in self.donors if d.answer]
        if not answers:
            return None
        answer, count = Counter(answers).most_common(1)[0]
        return answer if count >= EXPECTED_ANSWER_SHARE * len(answers) else None

    @property
    def uid(self) -> str:
        decided_by = {
            "supernode": self.supernode.name,
            "members": sorted(self.supernode.uids),
            "tag": self.tag,
            "model": self.model_uid,
            "transcoder": self.transcoder_uid,
            "scale": self.scale,
            "other": self.other.name if self.other else None,
            "other_members": sorted(self.other.uids) if self.other else None,
            "donors": sorted(d.graph_uid for d in self.donors),
        }
        # hashed only when set, so runs stored before these options existed keep their uid
        if (self.strength, self.remove_scale) != SWAP_DEFAULTS:
            decided_by.update(strength=self.strength, remove_scale=self.remove_scale)
        text = json.dumps(decided_by, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def properties(self) -> dict[str, object]:
        return {
            "supernode": self.supernode.name,
            "kind": self.kind,
            "scale": self.scale,
            "other": self.other.name if self.other else None,
            "strength": self.strength if self.other else None,
            "remove_scale": self.remove_scale if self.other else None,
            "tag": self.tag,
            "members": list(self.supernode.uids),
            "other_members": list(self.other.uids) if self.other else [],
            "donors": [d.graph_uid for d in self.donors],
            "expected": self.expected,
            "model_uid": self.model_uid,
            "transcoder_uid": self.transcoder_uid,
        }


@dataclass
class PromptOutcome:
    graph_uid: str
    prompt: str
    answer: str | None
    tags: list[str]
    present: bool  # some supernode feature is active in the prompt
    p_before: float | None  # the answer's probability
    p_after: float | None
    top_before: str
    top_after: str
    changed: bool  # the top prediction changed
    success: bool

    def row(self, run_uid: str) -> dict[str, object]:
        return {"uid": f"{run_uid}:{self.graph_uid}", **asdict(self)}


@dataclass
class ValidationReport:
    uid: str
    computed: int = 0
    skipped: int = 0  # already stored
    outcomes: list[PromptOutcome] = field(default_factory=list)  # the ones computed now


class SupernodeIntervention:
    """Runs one spec's intervention on prompts with a loaded model and transcoder."""

    def __init__(self, builder: GraphBuilder, spec: ValidationSpec):
        self.builder, self.spec = builder, spec
        self.features = set(spec.supernode.keys)
        self.inject = None
        if spec.other is not None:
            rm = builder.rm
            runs = [rm.run(builder.tokenize(d.prompt)) for d in spec.donors]
            self.inject = donor_activations(runs, set(spec.other.keys))
        self.expected = spec.expected

    @torch.no_grad()
    def outcome(self, prompt: ValidationPrompt) -> PromptOutcome:
        builder, spec = self.builder, self.spec
        run = builder.rm.run(builder.tokenize(prompt.prompt))
        scale = spec.remove_scale if spec.scale is None else spec.scale
        interventions = group_interventions(
            run, self.features, scale=scale, inject=self.inject, strength=spec.strength
        )
        present = any(iv.scale is not None for iv in interventions)
        before = run.logits[-1]
        after = intervene(builder.rm, run, interventions).logits[-1] if interventions else before
        top_before, top_after = self._text(before), self._text(after)
        answer_id = answer_token_id(self.builder.tokenizer, prompt.answer)
        p_before = p_after = None
        if answer_id is not None:
            p_before = float(torch.softmax(before.float(), -1)[answer_id])
            p_after = float(torch.softmax(after.float(), -1)[answer_id])
        changed = top_after != top_before
        if spec.kind == "scale":
            success = changed
        else:
            success = top_after == self.expected if self.expected else changed
        return PromptOutcome(
            prompt.graph_uid, prompt.prompt, prompt.answer, list(prompt.tags), present,
            p_before, p_after, top_before, top_after, changed, success,
        )  # fmt: skip

    def _text(self, logits: torch.Tensor) -> str:
        return self.builder.tokenizer.decode([int(logits.argmax())]).strip()


def run_validation(
    handle: Neo4jHandle,
    builder: GraphBuilder,
    spec: ValidationSpec,
    prompts: Sequence[ValidationPrompt],
    *,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Intervene on every prompt not yet stored for this run, writing a batch at a time."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    uid = spec.uid
    handle.write(
        MERGE_RUN,
        {
            "uid": uid,
            "props": spec.properties(),
            "supernode": spec.supernode.name,
            "other": spec.other.name if spec.other else None,
        },
    )
    done = {r["graph_uid"] for r in handle.read(DONE_GRAPHS, {"uid": uid})}
    todo = [p for p in dict.fromkeys(prompts) if p.graph_uid not in done]
    report = ValidationReport(uid, skipped=len(prompts) - len(todo))
    if not todo:
        return report
    runner = SupernodeIntervention(builder, spec)
    for start in range(0, len(todo), batch_size):
        batch = [runner.outcome(p) for p in todo[start : start + batch_size]]
        handle.write(STORE_RESULTS, {"uid": uid, "rows": [o.row(uid) for o in batch]})
        report.outcomes.extend(batch)
        report.computed += len(batch)
        if progress is not None:
            progress(report.computed, len(todo))
    return report
