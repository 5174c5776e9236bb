"""Live interventions for the dashboard: load a model and its transcoders (once per process) and
compare the top logits with and without feature interventions (circuitmap.interventions).

Where the weights are: CIRCUITMAP_MODEL / CIRCUITMAP_TRANSCODERS when set, else the paths the
graph was computed from (the pipeline records them in the graph's metadata), else the graph's
model and transcoder uids."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from circuitmap.interventions import Intervention, intervene
from circuitmap.pipeline import GraphBuilder, GraphSettings


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


def compare(
    builder: GraphBuilder,
    prompt: str,
    edits: list[FeatureEdit],
    *,
    freeze_attention: bool = True,
    constrained: bool = False,
    k: int = 10,
) -> pd.DataFrame:
    """Top-k next tokens before and after the interventions, one row per token in either list."""
    rm = builder.rm
    run = rm.run(builder.tokenize(prompt))
    layers = range(rm.adapter.n_layers) if constrained else None
    result = intervene(
        rm,
        run,
        [e.intervention() for e in edits],
        constrained_layers=layers,
        freeze_attention=freeze_attention,
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
    return rows.sort_values("intervened", ascending=False).reset_index(drop=True)
