"""Feature interventions: set or scale feature activations and watch logits and features change.

Semantics follow circuit-tracer's `feature_intervention`: the real model runs (its MLPs included);
an intervened feature's change of activation times its decoder vectors is added at the output
sites it writes to.
- `freeze_attention`: attention patterns stay at their values on the clean prompt.
- `constrained_layers`: MLP outputs at those layers are held at their clean values (plus the
  transcoder skip path's change, if any) and the intervened features write only there, so effects
  do not double count through the MLPs; the base of a scaling is then the clean activation. When
  the range covers every layer, normalisation scales are frozen too: that is the frozen linear
  setting in which a direct edge predicts the effect exactly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from circuitmap.models import Hooks
from circuitmap.replacement import PromptRun, ReplacementModel


@dataclass(frozen=True)
class Intervention:
    """Set feature (layer, position, index) to `value`, or multiply it by `scale` (-1 inhibits)."""

    layer: int
    position: int
    feature: int
    value: float | None = None
    scale: float | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.scale is None):
            raise ValueError("an intervention needs exactly one of value or scale")

    def target(self, current: torch.Tensor) -> torch.Tensor:
        return current * self.scale if self.value is None else torch.full_like(current, self.value)


@dataclass
class InterventionResult:
    logits: torch.Tensor  # [n, vocab]
    activations: torch.Tensor  # [L, n, F], intervened entries at their new values
    pre_activations: torch.Tensor  # [L, n, F] computed from the new inputs


@torch.no_grad()
def intervene(
    rm: ReplacementModel,
    run: PromptRun,
    interventions: list[Intervention],
    *,
    constrained_layers: range | None = None,
    freeze_attention: bool = True,
) -> InterventionResult:
    """Run the recorded prompt again with the interventions applied."""
    a, tc = rm.adapter, rm.transcoder
    L, n = a.n_layers, run.n_pos
    for iv in interventions:
        if not (0 <= iv.layer < L and 0 <= iv.position < n and 0 <= iv.feature < tc.n_features):
            raise ValueError(f"intervention {iv} is outside the model, prompt or transcoder")
    writes = range(L) if constrained_layers is None else constrained_layers
    frozen_norms = constrained_layers is not None and set(range(L)) <= set(constrained_layers)
    by_layer: dict[int, list[Intervention]] = defaultdict(list)
    for iv in interventions:
        by_layer[iv.layer].append(iv)
    pending = torch.zeros(L, n, a.d_model, dtype=tc.dtype, device=a.device)
    pre_acts, acts = [], []

    def on_input(layer: int, x: torch.Tensor) -> None:
        pre, act = rm.encode_layer(x, layer)
        base = act if constrained_layers is None else run.activations[layer]
        for iv in by_layer.get(layer, []):
            current = base[iv.position, iv.feature].clone()
            new = iv.target(current)
            act[iv.position, iv.feature] = new
            decoders = tc.decoder_vectors(layer, [iv.feature])[0]  # [n_out, d]
            for j, m in enumerate(tc.output_layers(layer)):
                if m in writes:
                    pending[m, iv.position] += (new - current) * decoders[j]
        pre_acts.append(pre)
        acts.append(act)

    def on_output(layer: int, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if constrained_layers is not None and layer in constrained_layers:
            out = run.site_out[layer][None]
            if tc.W_skip is not None:
                out = out + rm.skip(x - run.site_in[layer], layer).to(out.dtype)
        return out + pending[layer].to(out.dtype)

    with Hooks() as hooks:
        if frozen_norms:
            rm.freeze_norms(hooks, run)
        if freeze_attention or constrained_layers is not None:
            rm.freeze_attention(hooks, run)
        rm.site_hooks(hooks, on_input, on_output, frozen_scales=run if frozen_norms else None)
        logits = rm.model(run.input_ids[None].to(a.device)).logits[0]
    return InterventionResult(logits, torch.stack(acts), torch.stack(pre_acts))


def answer_token_id(tokenizer, answer: object) -> int | None:
    """The answer's token id when it is exactly one token, so its probability can be read off the
    logits; None for an empty or multi-token answer."""
    if not isinstance(answer, str) or not answer:
        return None
    ids = tokenizer.encode(answer, add_special_tokens=False)
    return int(ids[0]) if len(ids) == 1 else None


# ---- supernode interventions: a group of features at once, across prompts -----------------------

FeatureKey = tuple[int, int]  # (layer, index)
DonorKey = tuple[int, int, int]  # (layer, index, position counted from the prompt's end: -1 last)


def donor_activations(runs: list[PromptRun], features: set[FeatureKey]) -> dict[DonorKey, float]:
    """Each feature's mean activation at each position counted from the end, over the `runs`
    (donor prompts) where it is active there: what a swap injects into other prompts."""
    sums: dict[DonorKey, float] = defaultdict(float)
    counts: dict[DonorKey, int] = defaultdict(int)
    for run in runs:
        for layer, pos, index in run.activations.nonzero().tolist():
            if (layer, index) in features:
                key = (layer, index, pos - run.n_pos)
                sums[key] += float(run.activations[layer, pos, index])
                counts[key] += 1
    return {key: sums[key] / counts[key] for key in sums}


def group_interventions(
    run: PromptRun,
    features: set[FeatureKey],
    *,
    scale: float = 0.0,
    inject: dict[DonorKey, float] | None = None,
    strength: float = 1.0,
) -> list[Intervention]:
    """Scale every active instance of `features` in `run` by `scale` (0 removes them, -1 inverts
    them), and set each `inject` feature to `strength` times its donor activation at its position
    counted from the end, whether or not it is active in this prompt (a swap: remove one group,
    inject another). A strength above 1 outweighs what features outside the group still carry."""
    interventions = [
        Intervention(layer, pos, index, scale=scale)
        for layer, pos, index in run.activations.nonzero().tolist()
        if (layer, index) in features
    ]
    taken = {(iv.layer, iv.position, iv.feature) for iv in interventions}
    for (layer, index, offset), value in sorted((inject or {}).items()):
        pos = run.n_pos + offset
        if pos >= 1 and (layer, pos, index) not in taken:  # position 0 holds no features
            interventions.append(Intervention(layer, pos, index, value=value * strength))
    return interventions
