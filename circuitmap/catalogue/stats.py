"""Per-feature running statistics over a corpus streamed in batches, in bounded memory.

For every feature of one layer: the k texts where it peaks highest (a running top-k of each
text's largest activation), a uniform sample of the texts where it is active at all (priority
sampling: every (text, feature) pair gets a fixed pseudo-random key and the smallest keys are
kept, so the sample does not depend on batch boundaries and a resumed run keeps the same one),
and its token counts for the density. The memory is fixed by the number of features, never by
the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_MASK32 = 0xFFFFFFFF
#: The tensors of a `LayerStats` that a checkpoint saves.
STATE = ("top_value", "top_text", "sample_key", "sample_value", "sample_text",
         "active_tokens", "active_texts", "activation_sum")  # fmt: skip


def sample_keys(text_ids: torch.Tensor, n_features: int, feature_offset: int) -> torch.Tensor:
    """`[n_texts, F]` keys in [0, 1), fixed per (text, feature) pair: a 32-bit integer hash."""
    features = torch.arange(n_features, dtype=torch.int64, device=text_ids.device)
    t = text_ids.to(torch.int64)[:, None] * 0x9E3779B1
    f = (features + feature_offset)[None, :] * 0x85EBCA77
    h = (t + f + 0x632BE5AB) & _MASK32
    h = h ^ (h >> 15)
    h = (h * 0x2C1B3C6D) & _MASK32
    h = h ^ (h >> 12)
    h = (h * 0x297A2D39) & _MASK32
    h = h ^ (h >> 15)
    return h.to(torch.float64).div_(2.0**32).to(torch.float32)


@dataclass
class LayerStats:
    """The running state of one layer's F features (tensors are `[k or R, F]` or `[F]`)."""

    top_value: torch.Tensor  # [k, F] largest per-text peaks, best first
    top_text: torch.Tensor  # [k, F] their text ids (-1: none)
    sample_key: torch.Tensor  # [R, F] priority keys of the sampled active texts (inf: empty)
    sample_value: torch.Tensor  # [R, F] their peaks
    sample_text: torch.Tensor  # [R, F] their text ids
    active_tokens: torch.Tensor  # [F] float64
    active_texts: torch.Tensor  # [F] int64
    activation_sum: torch.Tensor  # [F] float64
    feature_offset: int  # flat index of this layer's first feature (for the sample keys)

    @classmethod
    def empty(
        cls, n_features: int, k: int, samples: int, feature_offset: int, device=None
    ) -> LayerStats:
        on = {"device": device}
        return cls(
            top_value=torch.zeros(k, n_features, **on),
            top_text=torch.full((k, n_features), -1, dtype=torch.long, **on),
            sample_key=torch.full((samples, n_features), float("inf"), **on),
            sample_value=torch.zeros(samples, n_features, **on),
            sample_text=torch.full((samples, n_features), -1, dtype=torch.long, **on),
            active_tokens=torch.zeros(n_features, dtype=torch.float64, **on),
            active_texts=torch.zeros(n_features, dtype=torch.long, **on),
            activation_sum=torch.zeros(n_features, dtype=torch.float64, **on),
            feature_offset=feature_offset,
        )

    def update(self, acts: torch.Tensor, lengths: torch.Tensor, first_text: int) -> None:
        """Add a batch: `acts [n_tokens, F]` (float, >= 0) of consecutive texts numbered from
        `first_text`, `lengths[i]` tokens each."""
        n_texts, n_features, on = len(lengths), acts.shape[1], acts.device
        lengths = lengths.to(on)
        segment = torch.repeat_interleave(torch.arange(n_texts, device=on), lengths)[:, None]
        peak = torch.zeros(n_texts, n_features, device=on).scatter_reduce_(
            0, segment.expand(-1, n_features), acts, "amax"
        )
        # Sums in float32 within a batch (exact for counts below 2^24; pairwise summation for
        # the activations), float64 across batches: a bool or float64 copy of the whole batch
        # cost more than the rest of the update together. Activations are >= 0, so sign() is 0/1.
        self.active_tokens += torch.sign(acts).sum(0).double()
        self.active_texts += torch.count_nonzero(peak, dim=0)
        self.activation_sum += acts.sum(0).double()
        text_ids = torch.arange(first_text, first_text + n_texts, device=on)
        ids = text_ids[:, None].expand(-1, n_features)
        k = self.top_value.shape[0]
        if k:
            values, rank = torch.cat([self.top_value, peak]).topk(k, dim=0)
            self.top_text = torch.cat([self.top_text, ids]).gather(0, rank)
            self.top_value = values
        r = self.sample_key.shape[0]
        if r:
            keys = sample_keys(text_ids, n_features, self.feature_offset)
            keys = keys.masked_fill_(peak <= 0, float("inf"))
            kept, rank = torch.cat([self.sample_key, keys]).topk(r, dim=0, largest=False)
            self.sample_value = torch.cat([self.sample_value, peak]).gather(0, rank)
            self.sample_text = torch.cat([self.sample_text, ids]).gather(0, rank)
            self.sample_key = kept

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.{n}": getattr(self, n).contiguous().cpu() for n in STATE}

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], prefix: str, offset: int, device=None
    ) -> LayerStats:
        loaded = {n: tensors[f"{prefix}.{n}"].to(device) for n in STATE}
        return cls(**loaded, feature_offset=offset)

    def top_texts(self) -> torch.Tensor:
        """`[k, F]` top text ids, -1 where the feature never reached that rank."""
        return self.top_text.masked_fill(self.top_value <= 0, -1)

    def quantile_texts(self, bins: int, per_bin: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`[bins * per_bin, F]` sampled text ids (-1: none) grouped by bin, lowest bin first, and
        `[bins + 1, F]` bin edges: equal intervals of (0, max peak]. A text among the feature's
        top contexts is not sampled again."""
        n_features, on = self.top_value.shape[1], self.top_value.device
        edges = torch.linspace(0, 1, bins + 1, device=on)[:, None] * self.top_value[0][None, :]
        picked = torch.full((bins * per_bin, n_features), -1, dtype=torch.long, device=on)
        if not bins or not per_bin:
            return picked, edges
        fraction = self.sample_value / self.top_value[0].clamp_min(1e-30)
        which = (fraction * bins).ceil().long().clamp(1, bins) - 1  # (lower, upper] bins
        in_top = (self.sample_text[:, None, :] == self.top_texts()[None, :, :]).any(1)
        usable = self.sample_key.isfinite() & ~in_top
        for b in range(bins):
            mask = usable & (which == b)
            # rank within the bin by key order (the sample is sorted by key already)
            order = mask.long().cumsum(0) - 1
            keep = mask & (order < per_bin)
            rows, cols = keep.nonzero(as_tuple=True)
            picked[b * per_bin + order[rows, cols], cols] = self.sample_text[rows, cols]
        return picked, edges
