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
to the measured peaks. When the pull-backs are what does not fit, `fit_compute_batch` pulls fewer
targets back at once (the graph stays the same) before refusing.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import torch

from circuitmap.attribution import MIN_CHUNK_WIDTH

GIB = 2**30


#: The parts held at once in each phase of one graph (a lean record, as `GraphBuilder` makes):
#: the forward pass (the record grows while the model's own temporaries come and go; then the
#: activations), setting attribution up (the activations are released once their nonzeros are
#: read), the pull-backs (the sites and errors are released once copied), the graph's rows
#: formed from the selection's rows, and pruning (the prompt's record is freed by then).
_PHASES = {
    "forward": ("attention patterns", "sites and errors", "forward temporaries",
                "feature activations"),
    "attribution setup": ("attention patterns", "sites and errors", "attribution inputs"),
    "attributing": (
        "attention patterns",
        "attribution inputs",
        "pull-back batch",
        "selection rows",
        "graph rows",
    ),
    "forming rows": ("attention patterns", "selection rows", "forming rows"),
    "pruning": ("graph rows", "pruning"),
}  # fmt: skip


class MemoryBudgetError(ValueError):
    """A graph that would not fit in the memory available; the message says what to change."""


@dataclass
class MemoryEstimate:
    """Bytes per part of one graph's computation, and what it was estimated for."""

    n_tokens: int
    n_active_features: int | None  # None: before the forward pass (an estimate of it is used)
    n_feature_nodes: int
    parts: dict[str, int] = field(default_factory=dict)
    batch_size: int = 0
    compute_batch_size: int = 0  # targets pulled back at once (at most batch_size)

    def phase(self, name: str) -> int:
        return sum(self.parts.get(k, 0) for k in _PHASES[name])

    @property
    def total(self) -> int:
        """Peak: the largest phase (see `_PHASES`)."""
        return max(self.phase(name) for name in _PHASES)

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
    compute_batch_size: int | None = None,
    update_interval: int = 4,
) -> MemoryEstimate:
    """Estimate a graph's memory (as `GraphBuilder.build` computes it: a lean record with the
    last position's logits only) from the model's and transcoder's shapes, weights excluded.
    Without `n_active_features` (before the forward pass) it assumes `active_per_token_layer`.
    An upper bound of the tensors circuitmap holds (`tests/test_lazy_transcoders.py` checks it
    against the measured peak)."""
    a, tc = rm.adapter, rm.transcoder
    L, d, n, H = a.n_layers, a.d_model, n_tokens, a.n_heads
    B = min(compute_batch_size or batch_size, batch_size)
    model_b = torch.empty((), dtype=a.dtype).element_size()
    tc_b = torch.empty((), dtype=tc.dtype).element_size()
    F = tc.n_features
    K = n_active_features
    if K is None:
        K = min(L * n * F, L * n * active_per_token_layer)
    k = K if max_feature_nodes is None else min(K, max_feature_nodes)
    m = max_n_logits
    n_norms = sum(len(a.norms(i)) for i in range(L)) + 1
    mlp = getattr(a.config, "intermediate_size", None) or 4 * d
    patterns = L * H * n * n * model_b + n * d * model_b  # and the token vectors
    sites = (
        n_norms * n * 4  # frozen norm scales
        + 4 * L * n * d * model_b  # transcoder sites in and out, reconstruction, errors
        + 3 * a.vocab_size * 4  # the last position's logits
    )
    # One layer's attention scores (model dtype, a softcap's two temporaries, the float32
    # softmax), the residual stream and its branches, the MLP's hidden activations.
    temporaries = H * n * n * (3 * model_b + 4) + 8 * n * d * 4 + 3 * n * mlp * model_b
    # Lazy transcoders form one layer's pre-activations, mask and product at a time; eager ones
    # all layers' at once.
    per_layer = n * F * tc_b
    activations = L * per_layer + (3 * per_layer if tc.lazy else 3 * L * per_layer)
    mean_out = (L + 1) / 2 if tc.config.kind == "clt" else 1
    # Packed (padded, see `attribution._chunk_width`) plus, while packing one output layer,
    # its writers' gathered and reordered copies (every feature writes to a CLT's last layer;
    # a PLT layer's writers are its own features, taken as at most twice the average layer's);
    # the float32 errors and token vectors; the encoder rows of the features whose rows are
    # computed (all, or with a cap one refresh's); the active features' indices and values.
    writers = K if tc.config.kind == "clt" else min(K, 2 * K // L)
    n_cols = K + (L + 1) * n
    capped = k < K
    encoder_rows = min(k, update_interval * batch_size) if capped else K
    # Padding: at most a quarter, or MIN_CHUNK_WIDTH rows at each position of each layer.
    padded = max(1.25 * K * mean_out, K * mean_out + MIN_CHUNK_WIDTH * n * L)
    inputs = (
        int(padded * d * tc_b)
        + 2 * writers * d * tc_b
        + (L + 1) * n * d * 4
        + encoder_rows * d * tc_b
        + K * 40
    )
    # The logit targets' float32 chunk of the unembedding (its column mean), during setup.
    inputs += d * 16384 * 4
    # The gradient [B, n, d] in float32 and, at once, its branches through one layer (norm
    # transposes, the attention path in the weights' dtype and back, the error and token
    # products, the decoder chunks): measured 7.6 such tensors at 2,048 tokens; 9 leaves room.
    # Then the feature scores and the row.
    pull_back = 9 * B * n * d * 4 + (K + 256 + 2 * n_cols) * B * 4
    n_nodes = k + (L + 1) * n + m
    rows = (k + m) * n_nodes * 4
    # With a cap, rows over every active feature while the most influential are chosen, and
    # one normalised chunk of them (influence); then the graph's rows are formed from them
    # block by block, each block freed once copied.
    chunk = min(k + m, max(1, (1 << 24) // n_cols)) * n_cols * 4
    selection = (k + m) * n_cols * 4 + 2 * chunk if capped else 0
    forming = min(k + m, update_interval * batch_size) * n_nodes * 4 + 256 * n_cols * 4
    pruning = int(1.5 * rows)  # normalised rows (float32) and the kept-edge mask (bool)
    return MemoryEstimate(
        n_tokens=n,
        n_active_features=n_active_features,
        n_feature_nodes=k,
        parts={
            "attention patterns": patterns,
            "sites and errors": sites,
            "forward temporaries": temporaries,
            "feature activations": activations,
            "attribution inputs": inputs,
            "pull-back batch": pull_back,
            "selection rows": selection,
            "graph rows": 0 if capped else rows,
            "forming rows": forming if capped else 0,
            "pruning": pruning + (rows if capped else 0),
        },
        batch_size=batch_size,
        compute_batch_size=B,
    )


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def bound_cpu_allocator(threshold: int = 4 << 20) -> bool:
    """Make glibc hand blocks of `threshold` bytes and more back to the system when they are
    freed. By default glibc raises its mmap threshold to the largest block freed so far (up to
    32 MiB) and then serves blocks below it from heaps it keeps: at long prompts the per-layer
    tensors of a few MiB freed in one phase stayed resident through the next (docs/precision.md
    gives the size). Fixing the threshold keeps RSS to what tensors hold.
    Process-wide; False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, threshold) and libc.mallopt(_M_TRIM_THRESHOLD, threshold)
    return bool(ok)


def release_freed_memory() -> None:
    """Return the C heap's free pages to the system (glibc `malloc_trim`; a no-op elsewhere)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc():
    """The C library when it is glibc (it has `mallopt` and `malloc_trim`), else None; looked up
    once, as finding it runs `ldconfig` and every graph trims the heap twice."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (AttributeError where not glibc)
    except (OSError, AttributeError):
        return None
    return libc


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


def fit_compute_batch(
    need, batch_size: int, limit_bytes: int, *, max_feature_nodes: int | None, dtype: str
) -> MemoryEstimate:
    """The estimate `need(compute_batch_size)` with the largest compute batch (at most
    `batch_size`, halving) that fits `limit_bytes`; `check`'s error when even one does not."""
    size = batch_size
    while True:
        estimate_ = need(size)
        if estimate_.total <= limit_bytes or size == 1:
            break
        size = max(1, size // 2)
    check(estimate_, limit_bytes, max_feature_nodes=max_feature_nodes, dtype=dtype,
          batch_size=batch_size)  # fmt: skip
    return estimate_


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
        "attention patterns": "a shorter prompt",
    }
    sizes = dict(need.parts)
    sizes["selection rows"] = sizes.get("selection rows", 0) + sizes.get("graph rows", 0)
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
