"""Catalog features for the feature page: the card, where it appears, its neighbours, its label."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from app.data import run
from app.data.connection import get_handle
from queries.labels import set_feature_label


@dataclass
class Context:
    """One top activating context: tokens with their activations (the feature's, per token)."""

    tokens: list[str]
    activations: list[float]


def feature_card(feature_uid: str) -> dict[str, object] | None:
    rows = run.frame("feature_card", feature=feature_uid)
    return rows.iloc[0].to_dict() if len(rows) else None


def search(text: str | None = None, limit: int = 50) -> pd.DataFrame:
    return run.frame("feature_search", text=text or None, limit=limit)


def appearances(feature_uid: str, order_by: str = "activation", limit: int = 100) -> pd.DataFrame:
    return run.frame("feature_prompts", feature=feature_uid, order_by=order_by, limit=limit)


def neighbourhood(feature_uid: str, limit: int = 15) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inputs, outputs) aggregated over the corpus (AGG_ATTR), strongest first."""
    rows = run.frame("feature_neighbourhood", feature=feature_uid, limit=limit)
    return rows[rows["direction"] == "input"], rows[rows["direction"] == "output"]


def save_label(feature_uid: str, label: str) -> int:
    updated = set_feature_label(get_handle(), feature_uid, label)
    run.clear()
    return updated


def parse_contexts(raw: object) -> list[Context]:
    """Top contexts from the catalogue's JSON: a list of {tokens, activations} objects (also
    accepted: `acts`/`values` for the activations, or `[tokens, activations]` pairs)."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)) or raw == "":
        return []
    data = json.loads(raw) if isinstance(raw, str) else raw
    if isinstance(data, dict):
        data = data.get("contexts") or data.get("examples") or []
    contexts = []
    for item in data:
        if isinstance(item, dict):
            tokens = item.get("tokens") or []
            acts = item.get("activations") or item.get("acts") or item.get("values") or []
        else:
            tokens, acts = item
        acts = [float(a) for a in acts][: len(tokens)]
        contexts.append(Context([str(t) for t in tokens], acts + [0.0] * (len(tokens) - len(acts))))
    return contexts
