"""Node positions in the Neuronpedia convention: x = token position, y = layer band (embeddings at
the bottom, logits at the top). Nodes sharing a (band, position) cell are packed in a small grid
inside the cell, most influential first, errors last. Logits (all at the last position, up to ten)
get one token column each, leftwards from their position, so their labels stay readable."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CELL_WIDTH = 0.84  # share of one token column a cell's nodes may use
BAND_HEIGHT = 0.7  # share of one layer band a cell's nodes may use
LOGIT_STEP = 0.9  # horizontal distance between neighbouring logits
KIND_ORDER = {"token": 0, "supernode": 1, "feature": 1, "error": 2, "logit": 3}


def band_of(kind: str, layer: int, n_layers: int) -> int:
    """Row index: 0 for token embeddings, layer + 1 for features/errors, n_layers + 1 for logits."""
    if kind == "token":
        return 0
    if kind == "logit":
        return n_layers + 1
    return int(layer) + 1


def band_labels(n_layers: int) -> list[str]:
    return ["Emb"] + [f"L{i}" for i in range(n_layers)] + ["Logits"]


def _grid(n: int) -> tuple[int, int]:
    """Columns and rows of the grid a cell of n nodes is packed into (wider than tall)."""
    cols = max(1, min(n, math.ceil(math.sqrt(n * 3))))
    return cols, math.ceil(n / cols)


def layout(nodes: pd.DataFrame, n_layers: int) -> pd.DataFrame:
    """Copy of `nodes` with `band`, `x`, `y` columns."""
    out = nodes.copy()
    if out.empty:
        return out.assign(
            band=pd.Series(dtype=int), x=pd.Series(dtype=float), y=pd.Series(dtype=float)
        )
    out["band"] = [
        band_of(k, layer, n_layers) for k, layer in zip(out["kind"], out["layer"], strict=True)
    ]
    out["_kind_order"] = out["kind"].map(KIND_ORDER).fillna(1)
    out["_infl"] = out["influence"].fillna(1.0)  # cumulative influence: small = influential
    out["_prob"] = -out["probability"].fillna(0.0)
    out = out.sort_values(["band", "position", "_kind_order", "_prob", "_infl", "node_id"])
    xs = np.empty(len(out))
    ys = np.empty(len(out))
    i = 0
    logit_band = n_layers + 1
    for (band, pos), size in out.groupby(["band", "position"], sort=False).size().items():
        if band == logit_band:
            xs[i : i + size] = pos - LOGIT_STEP * np.arange(size)
            ys[i : i + size] = band
            i += size
            continue
        cols, rows = _grid(int(size))
        k = np.arange(size)
        col, row = k % cols, k // cols
        dx = CELL_WIDTH / cols
        dy = BAND_HEIGHT / rows if rows > 1 else 0.0
        xs[i : i + size] = pos - CELL_WIDTH / 2 + dx * (col + 0.5)
        ys[i : i + size] = band - BAND_HEIGHT / 2 + dy * (row + 0.5) if rows > 1 else band
        i += size
    out["x"] = xs
    out["y"] = ys
    return out.drop(columns=["_kind_order", "_infl", "_prob"]).reset_index(drop=True)
