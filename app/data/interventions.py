"""Live interventions for the dashboard: load a model and its transcoders (once per process) and
compare the top logits with and without feature interventions (circuitmap.interventions): the
graph's own features edited one by one, every active instance of a saved supernode scaled, and
features not active in the prompt injected at their activations in donor prompts (the swap of
`circuitmap validate`, through the same `donor_activations` and `group_interventions`).

Where the weights are: CIRCUITMAP_MODEL / CIRCUITMAP_TRANSCODERS when set, else the paths the
graph was computed from (the pipeline records them in the graph's metadata), else the graph's
model and transcoder uids."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from app.data import run as queries_run
from app.data.connection import get_handle
from app.data.graphs import graph_info
from circuitmap.interventions import (
    FeatureKey,
    Intervention,
    answer_token_id,
    donor_activations,
    group_interventions,
    intervene,
)
from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.replacement import PromptRun
from queries.corpus import group_features_of


@dataclass(frozen=True)
class FeatureEdit:
    """One row of the intervention table: a graph's feature node and what to do to it."""

    layer: int
    position: int
    feature: int
    mode: str  # "scale" or "set"
    value: float

    def intervention(self) -> Intervention:
        if self.mode not in ("scale", "set"):
            raise ValueError(f"intervention mode must be scale or set, got {self.mode!r}")
        kwargs = {"scale": self.value} if self.mode == "scale" else {"value": self.value}
        return Intervention(self.layer, self.position, self.feature, **kwargs)


def default_paths(graph_info: dict[str, object]) -> tuple[str, str]:
    """CIRCUITMAP_MODEL / CIRCUITMAP_TRANSCODERS, else where the graph's weights were loaded
    from (its metadata), else its model and transcoder uids (hub names, or directories here)."""
    metadata = json.loads(str(graph_info.get("metadata") or "{}"))
    return (
        os.environ.get("CIRCUITMAP_MODEL")
        or metadata.get("model_path")
        or str(graph_info["model_uid"]),
        os.environ.get("CIRCUITMAP_TRANSCODERS")
        or metadata.get("transcoder_path")
        or str(graph_info["transcoder_uid"]),
    )


def missing(model_path: str, transcoder_path: str) -> list[str]:
    """Which of the two is not a local directory (interventions need both on this machine)."""
    named = {"model": model_path, "transcoders": transcoder_path}
    return [
        f"{what} ({path or 'none given'})"
        for what, path in named.items()
        if not path or not Path(path).is_dir()
    ]


@st.cache_resource(max_entries=2, show_spinner="Loading the model and transcoders…")
def load(model_path: str, transcoder_path: str) -> GraphBuilder:
    return GraphBuilder.from_paths(model_path, transcoder_path, GraphSettings())


class InterventionInputError(ValueError):
    """An intervention that cannot act on this prompt (nothing active to scale or to inject)."""


@dataclass(frozen=True)
class GroupScale:
    """Multiply every active instance of a saved supernode's members in the prompt."""

    supernode: str
    keys: tuple[FeatureKey, ...]  # the members' (layer, index)
    factor: float


@dataclass(frozen=True)
class Donor:
    """A prompt whose activations are injected (a graph where the features are active)."""

    graph_uid: str
    prompt: str


@dataclass(frozen=True)
class Injection:
    """Features set to their mean activation over the donors, at the same positions counted
    from the prompt's end, whether or not they are active in the prompt."""

    name: str  # the supernode's name, or a description of the features chosen
    keys: tuple[FeatureKey, ...]
    donors: tuple[Donor, ...]


@dataclass(frozen=True)
class InterventionPlan:
    """Everything one run does: what the history stores and a re-opened run shows."""

    edits: tuple[FeatureEdit, ...] = ()
    scale: GroupScale | None = None
    inject: Injection | None = None
    freeze_attention: bool = True
    constrained: bool = False

    @property
    def empty(self) -> bool:
        return not self.edits and self.scale is None and self.inject is None

    def summary(self) -> str:
        """What was intervened, in words (the history's one-line description)."""
        parts = []
        if self.edits:
            edits = (
                f"{e.mode} L{e.layer}/{e.feature}@{e.position} {e.value:g}" for e in self.edits
            )
            parts.append(", ".join(edits))
        if self.scale is not None:
            parts.append(f"scale supernode {self.scale.supernode} ×{self.scale.factor:g}")
        if self.inject is not None:
            n = len(self.inject.donors)
            parts.append(f"inject {self.inject.name} from {n} donor{'s' * (n != 1)}")
        return "; ".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> InterventionPlan:
        data = json.loads(text)
        scale, inject = data.get("scale"), data.get("inject")
        return cls(
            edits=tuple(FeatureEdit(**e) for e in data.get("edits", [])),
            scale=None
            if scale is None
            else GroupScale(scale["supernode"], _keys(scale["keys"]), scale["factor"]),
            inject=None
            if inject is None
            else Injection(
                inject["name"],
                _keys(inject["keys"]),
                tuple(Donor(**d) for d in inject["donors"]),
            ),
            freeze_attention=data.get("freeze_attention", True),
            constrained=data.get("constrained", False),
        )


def _keys(rows: list[list[int]]) -> tuple[FeatureKey, ...]:
    return tuple((int(layer), int(index)) for layer, index in rows)


def feature_key(feature_uid: str) -> FeatureKey:
    """(layer, index) of a catalog feature uid "<transcoder>/<layer>/<index>"."""
    _, layer, index = feature_uid.rsplit("/", 2)
    return int(layer), int(index)


def plan_interventions(
    builder: GraphBuilder, run: PromptRun, plan: InterventionPlan
) -> list[Intervention]:
    """The plan as interventions on `run` (a `PromptRun` of the prompt): the edits, then the
    supernode's scale and the injection from `group_interventions`; an edit wins over a group
    entry for the same feature instance. InterventionInputError names what cannot act here."""
    edits = [e.intervention() for e in plan.edits]
    inject = None
    if plan.inject is not None:
        donors = plan.inject.donors
        if not donors:
            raise InterventionInputError(f"pick a donor prompt to take {plan.inject.name}'s "
                                         "activations from")  # fmt: skip
        runs = [builder.rm.run(builder.tokenize(d.prompt)) for d in donors]
        inject = donor_activations(runs, set(plan.inject.keys))
        if not inject:
            raise InterventionInputError(
                f"none of the {len(plan.inject.keys)} features of {plan.inject.name} is active "
                f"in the donor prompt{'s' * (len(donors) != 1)} "
                + ", ".join(f"“{d.prompt}”" for d in donors)
                + ": nothing to inject"
            )
    scaled = set(plan.scale.keys) if plan.scale is not None else set()
    factor = plan.scale.factor if plan.scale is not None else 0.0
    group = group_interventions(run, scaled, scale=factor, inject=inject)
    if plan.scale is not None and not any(iv.scale is not None for iv in group):
        raise InterventionInputError(
            f"no member of supernode {plan.scale.supernode!r} ({len(scaled)} features) is active "
            "in this prompt: nothing to scale"
        )
    if inject is not None and not any(iv.value is not None for iv in group):
        raise InterventionInputError(
            f"{plan.inject.name}'s donor positions (counted from the prompt's end) do not fall "
            "on this prompt's tokens: nothing to inject"
        )
    edited = {(iv.layer, iv.position, iv.feature) for iv in edits}
    return edits + [iv for iv in group if (iv.layer, iv.position, iv.feature) not in edited]


@dataclass
class InterventionOutcome:
    """Top-k next tokens before and after, and the expected answer's probability."""

    table: pd.DataFrame  # token, original, intervened, change
    top_before: list[str]
    top_after: list[str]
    p_answer_before: float | None = None
    p_answer_after: float | None = None


def compare(
    builder: GraphBuilder,
    prompt: str,
    plan: InterventionPlan,
    *,
    answer: str | None = None,
    k: int = 10,
) -> InterventionOutcome:
    """Run the prompt, apply the plan, and compare the next-token distributions."""
    rm = builder.rm
    run = rm.run(builder.tokenize(prompt))
    applied = plan_interventions(builder, run, plan)
    if not applied:
        raise InterventionInputError("nothing to intervene on: pick features, a supernode or "
                                     "features to inject")  # fmt: skip
    layers = range(rm.adapter.n_layers) if plan.constrained else None
    result = intervene(
        rm, run, applied, constrained_layers=layers, freeze_attention=plan.freeze_attention
    )
    before = torch.softmax(run.logits[-1].float(), -1)
    after = torch.softmax(result.logits[-1].float(), -1)
    ids = torch.cat([before.topk(k).indices, after.topk(k).indices]).unique()
    rows = pd.DataFrame(
        {
            "token": [builder.tokenizer.decode([int(i)]) for i in ids],
            "original": before[ids].tolist(),
            "intervened": after[ids].tolist(),
        }
    )
    rows["change"] = rows["intervened"] - rows["original"]
    answer_id = answer_token_id(builder.tokenizer, answer)
    decode = builder.tokenizer.decode
    return InterventionOutcome(
        rows.sort_values("intervened", ascending=False).reset_index(drop=True),
        [decode([int(i)]) for i in before.topk(5).indices],
        [decode([int(i)]) for i in after.topk(5).indices],
        None if answer_id is None else float(before[answer_id]),
        None if answer_id is None else float(after[answer_id]),
    )


# ---- what the page offers: supernodes' members and donor graphs -------------------------------

MAX_DONORS = 50


def supernode_keys(name: str) -> tuple[FeatureKey, ...]:
    """The saved supernode's members as (layer, index); LookupError / ValueError when it does not
    exist or has no members."""
    return group_features_of(get_handle(), name).keys


def donor_graphs(
    *, supernode: str | None = None, features: list[str] | None = None, exclude: str = ""
) -> pd.DataFrame:
    """Complete graphs where the supernode's members (or the features) have nodes, most of them
    first: graph_uid, matched (how many of the features), prompt."""
    if supernode is not None:
        found = queries_run.frame("graphs_containing", supernode=supernode, feature=None)
    else:
        parts = [
            queries_run.frame("graphs_containing", feature=uid, supernode=None)
            for uid in features or []
        ]
        found = pd.concat(parts) if parts else pd.DataFrame(columns=["graph_uid", "matched"])
        found = found.groupby("graph_uid", as_index=False)["matched"].sum()
    found = found[found["graph_uid"] != exclude]
    found = found.sort_values(["matched", "graph_uid"], ascending=[False, True]).head(MAX_DONORS)
    rows = []
    for uid, matched in zip(found["graph_uid"], found["matched"], strict=True):
        info = graph_info(uid)
        if info is not None and info["status"] == "complete":
            rows.append((uid, int(matched), str(info["prompt"])))
    return pd.DataFrame(rows, columns=["graph_uid", "matched", "prompt"])
