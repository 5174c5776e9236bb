"""How much memory one graph will take, estimated before it is computed.

A graph's memory grows with the prompt in three places: the forward pass records per-layer
tensors (attention patterns grow with n^2), the attribution holds the active features' decoders
and a batch of pull-backs `[batch, n, d]`, and the graph itself has a row per feature and logit
node over every source column. `estimate` adds these up from the shapes alone; `check` compares
the total with what the device has free and, when it will not fit, raises `MemoryBudgetError`
naming the settings that would make it fit. The ingest worker records that error as the prompt's
failure and goes on with the next prompt.

The figures are upper bounds of the tensors circuitmap itself holds (the model and transcoder
weights come on top where they are not already resident); bench/attribution.py prints them next
to the measured peaks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

GIB = 2**30


_ATTRIBUTING = (
    "forward record",
    "feature activations",
    "decoders of active features",
    "pull-back batch",
    "selection rows",
    "graph rows",
)


class MemoryBudgetError(ValueError):
    """A graph that would not fit in the memory available; the message says what to change."""


@dataclass
class MemoryEstimate:
    """Bytes per part of one graph's computation, and what it was estimated for."""

    n_tokens: int
    n_active_features: int | None  # None: before the forward pass (an estimate of it is used)
    n_feature_nodes: int
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Peak: the forward record, activations, decoders, a batch and the rows while the graph
        is attributed; then the rows and pruning's working copy (the rest is freed by then)."""
        p = self.parts
        attributing = sum(p.get(k, 0) for k in _ATTRIBUTING)
        return max(attributing, p.get("graph rows", 0) + p.get("pruning", 0))

    def describe(self) -> str:
        parts = ", ".join(f"{k} {_size(v)}" for k, v in self.parts.items() if v)
        return f"{_size(self.total)} ({parts})"


def estimate(
    rm,
    n_tokens: int,
    *,
    batch_size: int,
    max_feature_nodes: int | None,
    max_n_logits: int,
    n_active_features: int | None = None,
    active_per_token_layer: int = 64,
) -> MemoryEstimate:
    """Estimate a graph's memory from the model's and transcoder's shapes. Without
    `n_active_features` (before the forward pass) it assumes `active_per_token_layer`."""
    a, tc = rm.adapter, rm.transcoder
    L, d, n, H = a.n_layers, a.d_model, n_tokens, a.n_heads
    model_b = torch.empty((), dtype=a.dtype).element_size()
    tc_b = torch.empty((), dtype=tc.dtype).element_size()
    F = tc.n_features
    K = n_active_features
    if K is None:
        K = min(L * n * F, L * n * active_per_token_layer)
    k = K if max_feature_nodes is None else min(K, max_feature_nodes)
    m = max_n_logits
    n_norms = sum(len(a.norms(i)) for i in range(L)) + 1
    forward = (
        L * H * n * n * model_b  # attention patterns
        + 2 * (n_norms + L) * n * d * model_b  # frozen norm and attention inputs/outputs
        + 4 * L * n * d * model_b  # transcoder sites, reconstruction, errors
        + 3 * n * a.vocab_size * model_b  # logits (and a softcap's two temporaries)
    )
    # Eager transcoders form pre-activations and a mask for every layer at once; lazy ones one
    # layer at a time.
    per_layer = n * F * tc_b
    activations = L * per_layer + (2 * per_layer if tc.lazy else 2 * L * per_layer)
    mean_out = (L + 1) / 2 if tc.config.kind == "clt" else 1
    # Packed (up to 1.25x for padding) plus, while packing one output layer, its writers'
    # gathered and reordered copies (every feature writes to a CLT's last layer; a PLT layer's
    # writers are its own features, taken as at most twice the average layer's).
    writers = K if tc.config.kind == "clt" else min(K, 2 * K // L)
    decoders = int(1.25 * K * mean_out * d * tc_b) + 2 * writers * d * tc_b + (L + 1) * n * d * 4
    n_cols = K + (L + 1) * n
    pull_back = 6 * batch_size * n * d * 4 + (K + 256 + n_cols) * batch_size * 4
    n_nodes = k + (L + 1) * n + m
    rows = (k + m) * n_nodes * 4
    # With a cap, rows over every active feature while the most influential are chosen, and
    # the normalised copy that influence is estimated from.
    selection = 2 * (k + m) * n_cols * 4 if k < K else 0
    pruning = int(1.5 * rows)  # normalised rows (float32) and the kept-edge mask (bool)
    return MemoryEstimate(
        n_tokens=n,
        n_active_features=n_active_features,
        n_feature_nodes=k,
        parts={
            "forward record": forward,
            "feature activations": activations,
            "decoders of active features": decoders,
            "pull-back batch": pull_back,
            "selection rows": selection,
            "graph rows": rows,
            "pruning": pruning,
        },
    )


def available_bytes(device: torch.device | str) -> int:
    """Memory free for one more graph: MemAvailable on CPU, free device memory on CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check(
    need: MemoryEstimate,
    limit_bytes: int,
    *,
    max_feature_nodes: int | None,
    dtype: str,
    batch_size: int,
) -> None:
    """Raise `MemoryBudgetError` when `need` exceeds `limit_bytes`, saying what to change: the
    knob of the largest part first."""
    if need.total <= limit_bytes:
        return
    knobs = {
        "selection rows": f"a lower max_feature_nodes (now {max_feature_nodes})",
        "pull-back batch": f"a smaller batch_size (now {batch_size})",
        "forward record": "a shorter prompt",
    }
    sizes = {**need.parts, "selection rows": need.parts.get("selection rows", 0)}
    sizes["selection rows"] += sizes.get("graph rows", 0)
    order = sorted(knobs, key=lambda part: -sizes.get(part, 0))
    advice = [knobs[part] for part in order]
    if dtype == "float32":
        advice.insert(1, "dtype bfloat16 (now float32)")
    active = (
        f"{need.n_active_features:,} active features"
        if need.n_active_features
        else "before the forward pass"
    )
    raise MemoryBudgetError(
        f"this graph needs about {need.describe()} for {need.n_tokens} tokens ({active}, "
        f"{need.n_feature_nodes:,} feature nodes), more than the {_size(limit_bytes)} "
        f"available: use {', '.join(advice)}; or set memory_limit_gb if more is really free"
    )


def _size(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / 2**20:.1f} MiB"
