"""One module for per-layer (PLT) and cross-layer (CLT) transcoders.

Shapes follow circuit-tracer's CrossLayerTranscoder so its files map onto ours one to one:
`W_enc [L, F, d]`, `b_enc [L, F]`, `threshold [L, F]` (JumpReLU only), `b_dec [L, d]`,
`W_dec[l] [F, n_out(l), d]` (n_out = L - l for a CLT, 1 for a PLT), `W_skip [L, d, d]` or None.
A PLT is the CLT whose features write only to their own layer, so one code path serves both.

Sites (where a layer's features read and write, in Hugging Face module terms):
- input `resid_mid`: residual stream before the pre-MLP norm (TransformerLens `hook_resid_mid`).
- input `mlp_in`: the MLP module's input, after the pre-MLP norm and its weight (`mlp.hook_in`).
- input `mlp_in_unweighted`: the pre-MLP norm's normalised input before its elementwise weight
  (TransformerLens `ln2.hook_normalized`, which GemmaScope transcoders read); equals `mlp_in`
  when the norm's weight is one.
- output `mlp_out`: the MLP module's output, before any post-MLP norm (`mlp.hook_out`).
- output `mlp_out_post_norm`: the MLP branch after the post-MLP norm (Gemma-2's
  post_feedforward_layernorm; TransformerLens `hook_mlp_out`); equals `mlp_out` in families
  without a post-MLP norm (GPT-2, Llama, Qwen).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

KINDS = ("clt", "plt")
ACTIVATIONS = ("jumprelu", "relu", "topk")
INPUT_SITES = ("resid_mid", "mlp_in", "mlp_in_unweighted")
OUTPUT_SITES = ("mlp_out", "mlp_out_post_norm")

#: Initial JumpReLU threshold (the methods paper's value).
DEFAULT_THRESHOLD = 0.03
#: Width of the rectangle kernel of the threshold's straight-through estimator, in units of
#: pre-activations. Our init gives pre-activations of order one on inputs normalised to unit
#: RMS per dimension (unit-norm encoder rows), so a bandwidth of 1 spans the bulk of them.
DEFAULT_BANDWIDTH = 1.0


class TranscoderFormatError(ValueError):
    """A transcoder file or config that cannot be read, or shapes that do not fit a model."""


@dataclass
class TranscoderConfig:
    """What a transcoder is, independent of its weights (saved as JSON next to them)."""

    kind: str
    n_layers: int
    d_model: int
    n_features: int
    activation: str = "jumprelu"
    topk: int | None = None
    input_site: str = "resid_mid"
    output_site: str = "mlp_out"
    skip: bool = False
    model_name: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        checks = [
            (self.kind in KINDS, f"kind must be one of {KINDS}, got {self.kind!r}"),
            (
                self.activation in ACTIVATIONS,
                f"activation must be one of {ACTIVATIONS}, got {self.activation!r}",
            ),
            (
                self.input_site in INPUT_SITES,
                f"input_site must be one of {INPUT_SITES}, got {self.input_site!r}",
            ),
            (
                self.output_site in OUTPUT_SITES,
                f"output_site must be one of {OUTPUT_SITES}, got {self.output_site!r}",
            ),
            (
                min(self.n_layers, self.d_model, self.n_features) > 0,
                "n_layers, d_model and n_features must be positive",
            ),
            (
                self.activation != "topk" or (self.topk or 0) > 0,
                "activation 'topk' needs a positive topk",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise TranscoderFormatError(message)
        if self.activation == "topk":
            self.topk = min(int(self.topk), self.n_features)
        else:
            self.topk = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscoderConfig:
        """Build from a dict, ignoring unknown keys (newer files) but requiring the core ones."""
        names = {f.name for f in fields(cls)}
        missing = {"kind", "n_layers", "d_model", "n_features"} - data.keys()
        if missing:
            raise TranscoderFormatError(f"transcoder config misses {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})


class _JumpReLU(torch.autograd.Function):
    """`h * (h > theta)`; theta's gradient by a straight-through estimator.

    d/dtheta of the jump is approximated with a rectangle kernel of width `bandwidth`:
    -(theta / bandwidth) * 1[|h - theta| < bandwidth / 2]. The pre-activation gets the plain
    gradient of the active part (as in Rajamanoharan et al. 2024 and circuit-tracer)."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float):
        mask = pre > threshold
        ctx.save_for_backward(pre, threshold, mask)
        ctx.bandwidth = bandwidth
        return pre * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pre, threshold, mask = ctx.saved_tensors
        grad_pre = grad * mask if ctx.needs_input_grad[0] else None
        grad_threshold = None
        if ctx.needs_input_grad[1]:
            bw = ctx.bandwidth
            window = ((pre - threshold).abs() < bw / 2).to(grad.dtype)
            per_elem = -(threshold / bw) * window * grad
            grad_threshold = _sum_to_shape(per_elem, threshold.shape)
        return grad_pre, grad_threshold, None


def _sum_to_shape(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Undo broadcasting: sum `t` over the dimensions that `shape` broadcast."""
    extra = t.dim() - len(shape)
    if extra:
        t = t.sum(dim=tuple(range(extra)))
    dims = tuple(i for i, size in enumerate(shape) if size == 1 and t.shape[i] != 1)
    return t.sum(dim=dims, keepdim=True) if dims else t


class Transcoder(nn.Module):
    """Sparse replacement of every MLP: encode inputs at each layer, decode MLP outputs.

    All methods take stacked per-layer tensors `[L, n, ...]`; n is any number of tokens."""

    def __init__(
        self, config: TranscoderConfig, dtype: torch.dtype = torch.float32, device=None
    ) -> None:
        super().__init__()
        self.config = config
        L, F, d = config.n_layers, config.n_features, config.d_model
        opts = {"dtype": dtype, "device": device}
        self.W_enc = nn.Parameter(torch.zeros(L, F, d, **opts))
        self.b_enc = nn.Parameter(torch.zeros(L, F, **opts))
        self.b_dec = nn.Parameter(torch.zeros(L, d, **opts))
        self.W_dec = nn.ParameterList(
            [nn.Parameter(torch.zeros(F, self.n_out(layer), d, **opts)) for layer in range(L)]
        )
        if config.activation == "jumprelu":
            self.threshold = nn.Parameter(torch.full((L, F), DEFAULT_THRESHOLD, **opts))
        else:
            self.register_parameter("threshold", None)
        if config.skip:
            self.W_skip = nn.Parameter(torch.zeros(L, d, d, **opts))
        else:
            self.register_parameter("W_skip", None)
        self.bandwidth = DEFAULT_BANDWIDTH

    # --- structure ---------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        return self.config.n_layers

    @property
    def n_features(self) -> int:
        return self.config.n_features

    @property
    def d_model(self) -> int:
        return self.config.d_model

    def n_out(self, layer: int) -> int:
        """How many layers a feature at `layer` writes to."""
        return self.n_layers - layer if self.config.kind == "clt" else 1

    def output_layers(self, layer: int) -> range:
        """The layers that `layer`'s features write to (itself first)."""
        return range(layer, layer + self.n_out(layer))

    # --- forward pieces ----------------------------------------------------------------------

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """`[L, n, d]` inputs at each layer's input site -> `[L, n, F]` pre-activations."""
        self._check_input(x)
        return torch.baddbmm(self.b_enc.unsqueeze(1), x, self.W_enc.transpose(1, 2))

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """The activation function on `[L, n, F]` pre-activations."""
        kind = self.config.activation
        if kind == "jumprelu":
            return _JumpReLU.apply(pre, self.threshold.unsqueeze(1), self.bandwidth)
        if kind == "relu":
            return torch.relu(pre)
        values, indices = pre.topk(self.config.topk, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.pre_activations(x))

    def decode(self, acts: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """`[L, n, F]` activations -> `[L, n, d]` reconstruction at every output site.

        `out[m] = sum_{l <= m} acts[l] @ W_dec[l][:, m - l] + b_dec[m]` (+ `x[m] @ W_skip[m]`)."""
        L, n, _ = acts.shape
        if self.n_layers != L:
            raise ValueError(f"expected activations for {self.n_layers} layers, got {L}")
        out = self.b_dec.unsqueeze(1).expand(L, n, self.d_model).clone()
        for layer in range(L):
            w = self.W_dec[layer]
            k = w.shape[1]
            contrib = (acts[layer] @ w.reshape(self.n_features, k * self.d_model)).view(n, k, -1)
            out[layer : layer + k] += contrib.transpose(0, 1)
        if self.W_skip is not None:
            if x is None:
                raise ValueError("this transcoder has a skip connection: pass x to decode()")
            out = out + torch.bmm(x, self.W_skip)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = self.encode(x)
        return self.decode(acts, x), acts

    def decoder_vectors(self, layer: int, feature_ids, output: int | None = None) -> torch.Tensor:
        """`[k, n_out(layer), d]` decoder vectors of some features of one layer (`[k, d]` into
        its `output`-th output layer only, if given)."""
        w = self.W_dec[layer]
        return w[feature_ids] if output is None else w[feature_ids, output]

    def encoder_rows(self, layers: torch.Tensor, feature_ids: torch.Tensor) -> torch.Tensor:
        """`[k, d]` encoder rows of features given by (layer, index)."""
        return self.W_enc[layers, feature_ids]

    def layer_pre_activations(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """`[n, F]` pre-activations of one layer's features for its input-site values `[n, d]`."""
        return x.to(self.dtype) @ self.W_enc[layer].T + self.b_enc[layer]

    def decode_contribution(self, acts: torch.Tensor, source: int, layer: int) -> torch.Tensor:
        """`[n, d]` what `source`'s features with activations `acts [n, F]` write to `layer`."""
        return acts @ self.W_dec[source][:, layer - source]

    def disk_tensors(self) -> dict[str, torch.Tensor]:
        """Weights left on disk, by name (none: every weight is a parameter)."""
        return {}

    @property
    def lazy(self) -> bool:
        """Whether the big weights stay on disk, read as needed (`LazyTranscoder`)."""
        return False

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the transcoder computes in (its parameters')."""
        return self.b_dec.dtype

    @property
    def device(self) -> torch.device:
        return self.b_dec.device

    def decoder_norms(self) -> torch.Tensor:
        """`[L, F]` norm of each feature's decoder vectors concatenated over its output layers."""
        return torch.stack([w.pow(2).sum(dim=(1, 2)).sqrt() for w in self.W_dec])

    # --- helpers -----------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[0] != self.n_layers or x.shape[2] != self.d_model:
            raise ValueError(
                f"expected inputs [{self.n_layers}, n, {self.d_model}], got {list(x.shape)}"
            )

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Random init for training on inputs/targets normalised to unit RMS per dimension.

        - encoder rows: random unit directions, so pre-activations are O(1) (the STE bandwidth
          is chosen relative to that scale); input and output sites differ, so encoders are
          not tied to the decoder.
        - decoder: random directions, each feature's concatenated decoder norm 0.1 /
          sqrt(F / d) capped at 0.1, so the initial reconstruction is small next to the targets
          (unit RMS) even with half the features active.
        - b_enc 0 and threshold 0.03 (the trainer then re-centres b_enc on data so each
          feature starts active on a minority of tokens, inside the STE window).
        - b_dec 0 (the trainer sets it to the mean target), W_skip 0."""
        L, F, d = self.n_layers, self.n_features, self.d_model
        dev, dt = self.W_enc.device, self.W_enc.dtype
        w_enc = torch.randn(L, F, d, generator=generator).to(dev, dt)
        self.W_enc.copy_(w_enc / w_enc.norm(dim=-1, keepdim=True))
        self.b_enc.zero_()
        self.b_dec.zero_()
        dec_norm = 0.1 * min(1.0, math.sqrt(d / F))
        for w in self.W_dec:
            v = torch.randn(w.shape, generator=generator).to(dev, dt)
            w.copy_(v * (dec_norm / v.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()))
        if self.threshold is not None:
            self.threshold.fill_(DEFAULT_THRESHOLD)
        if self.W_skip is not None:
            self.W_skip.zero_()

    @torch.no_grad()
    def fold_scales(self, in_scale: torch.Tensor, out_scale: torch.Tensor) -> None:
        """Turn a transcoder trained on `x / in_scale[l]`, `y / out_scale[m]` into one that maps
        raw inputs to raw outputs. Pre-activations, thresholds and activations are unchanged."""
        in_scale = in_scale.to(self.W_enc)
        out_scale = out_scale.to(self.W_enc)
        self.W_enc.div_(in_scale.view(-1, 1, 1))
        for layer, w in enumerate(self.W_dec):
            w.mul_(out_scale[layer : layer + w.shape[1]].view(1, -1, 1))
        self.b_dec.mul_(out_scale.view(-1, 1))
        if self.W_skip is not None:
            self.W_skip.mul_((out_scale / in_scale).view(-1, 1, 1))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"kind={c.kind}, n_layers={c.n_layers}, d_model={c.d_model}, n_features={c.n_features}"
            f", activation={c.activation}, input_site={c.input_site}, output_site={c.output_site}"
            f", skip={c.skip}"
        )


def check_compatible(tc: Transcoder, n_layers: int, d_model: int) -> None:
    """Raise a one-line TranscoderFormatError when `tc` does not fit a model's shape."""
    name = tc.config.name or "transcoder"
    if tc.n_layers != n_layers or tc.d_model != d_model:
        raise TranscoderFormatError(
            f"{name} has {tc.n_layers} layers x d_model {tc.d_model}, but the model has "
            f"{n_layers} layers x d_model {d_model}"
        )
