"""The local replacement model of one prompt.

Run the real model once and keep what the method holds fixed: every attention pattern, every
normalisation scale (final norm included) and each MLP's true output. The local replacement model
is then the real model with
- attention patterns frozen (attention is linear in its input: W_O . A . W_V),
- normalisation scales frozen (each norm is linear in its input),
- each MLP output replaced by the transcoder's reconstruction from features computed on the fly,
  plus an error term `err = true MLP output - reconstruction` held constant.
On the prompt it reproduces the real model's logits; `replacement_logits` checks that.

Frozen modules are implemented as `clean_output + linear(input - clean_input)` on the real modules'
outputs (forward hooks), so values are the real ones bit for bit wherever the input is unchanged,
and gradients and interventions see only the frozen linear map.

Gemma-2's final logit softcap (tanh) is applied by the real model after the unembedding and stays
in the replacement model's logits, so they equal the real ones. Attribution ignores it, as
circuit-tracer does: logit nodes are the pre-softcap (linear) logits; their probabilities come
from the real, softcapped logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from circuitmap.models import Hooks, ModelAdapter, NormSpec, ov_linear
from circuitmap.transcoders import Transcoder, TranscoderFormatError, check_compatible


@dataclass
class Frozen:
    """One module's clean input and output [1, n, d] on the prompt."""

    inp: torch.Tensor
    out: torch.Tensor


@dataclass
class PromptRun:
    """Everything one forward pass of the real model (and the transcoder) gives for one prompt."""

    input_ids: torch.Tensor  # [n]
    # [n, vocab] the real model's (softcapped where the model does); [1, vocab] (the last
    # position's) when the run was recorded with `last_logits_only`
    logits: torch.Tensor
    token_vectors: torch.Tensor  # [n, d], what each token's embedding adds to the residual
    patterns: list[torch.Tensor]  # per layer [H, n, n]
    attention: list[Frozen]  # per layer: attention module input (normalised) and output
    norms: dict[nn.Module, Frozen]  # every normalisation module, final norm included
    site_in: torch.Tensor  # [L, n, d] transcoder input site values
    site_out: torch.Tensor  # [L, n, d] true values at the transcoder output site
    activations: torch.Tensor  # [L, n, F] feature activations (position 0 zeroed if asked)
    reconstruction: torch.Tensor  # [L, n, d] transcoder reconstruction at the output site
    # Frozen norm scales [n, 1] by module, recorded instead of `norms` by a lean run (attention
    # and norms are then empty: see `ReplacementModel.run`).
    scales: dict[nn.Module, torch.Tensor] = field(default_factory=dict)
    errors: torch.Tensor = field(init=False)  # [L, n, d] site_out - reconstruction

    def __post_init__(self) -> None:
        self.errors = self.site_out - self.reconstruction

    @property
    def n_pos(self) -> int:
        return int(self.input_ids.shape[0])

    def scale(self, spec: NormSpec, module: nn.Module) -> torch.Tensor:
        """The frozen denominator [n, 1] of a normalisation module on this prompt."""
        if module in self.scales:
            return self.scales[module]
        return spec.scale(self.norms[module].inp[0])

    @property
    def lean(self) -> bool:
        """Recorded for attribution only (scales, no frozen inputs and outputs)."""
        return not self.norms

    def require_frozen(self) -> None:
        if self.lean:
            raise ValueError(
                "this run was recorded lean (for attribution only): record it with "
                "ReplacementModel.run(input_ids) to freeze or intervene on it"
            )


class ReplacementModel:
    """A real model plus a transcoder: records prompts and runs the local replacement model.

    `zero_first_position` drops features (and, in attribution, errors) at position 0, which
    circuit-tracer always does: `tokenize` puts a BOS-like token there."""

    def __init__(
        self, model: nn.Module, transcoder: Transcoder, *, zero_first_position: bool = True
    ) -> None:
        self.adapter = ModelAdapter(model)
        self.transcoder = transcoder
        self.zero_first_position = zero_first_position
        check_compatible(transcoder, self.adapter.n_layers, self.adapter.d_model)
        cfg = transcoder.config
        self.input_site, self.output_site = cfg.input_site, cfg.output_site
        try:
            self.adapter.input_site_module(0, self.input_site)
            self.adapter.output_site_module(0, self.output_site)
        except ValueError as err:
            raise TranscoderFormatError(f"{cfg.name or 'transcoder'}: {err}") from None

    @property
    def model(self) -> nn.Module:
        return self.adapter.model

    # ---- one real forward pass ------------------------------------------------------------------
    @torch.no_grad()
    def run(
        self, input_ids: torch.Tensor, *, last_logits_only: bool = False, lean: bool = False
    ) -> PromptRun:
        """Run the real model on `input_ids` [n] and record what the method freezes.

        `last_logits_only` keeps the last position's logits only (all attribution needs): the
        unembedding then runs on one position instead of n, which at a 256k vocabulary and
        2,048 tokens saves gigabytes (the logits and the softcap's temporaries). `lean` records
        what attribution reads and nothing more: the norms' frozen scales `[n, 1]` instead of
        their inputs and outputs, the attention patterns without the attention modules' inputs
        and outputs, and the sites written straight into `[L, n, d]` tensors; such a run cannot
        be intervened on (`freeze_norms` and `freeze_attention` refuse it), and `attribute`
        consumes it (it releases the activations, sites and errors once read)."""
        a = self.adapter
        n = int(input_ids.shape[0])
        if n > a.n_ctx:
            raise ValueError(f"prompt has {n} tokens, longer than the model's context of {a.n_ctx}")
        seen: dict[object, object] = {}

        def store(key):
            return lambda x, out: seen.__setitem__(key, (x, out))

        norm_modules = [m for layer in range(a.n_layers) for m in a.norms(layer).values()]
        norm_modules.append(a.final_norm)
        layers = range(a.n_layers)
        scales: dict[nn.Module, torch.Tensor] = {}
        site_in: torch.Tensor | None = None
        site_out: torch.Tensor | None = None

        def lean_site(layer: int, x: torch.Tensor, out: torch.Tensor | None) -> None:
            nonlocal site_in, site_out
            value = self._site_value(layer, x) if out is None else out[0]
            if site_in is None:
                site_in = value.new_empty(a.n_layers, *value.shape)
                site_out = torch.empty_like(site_in)
            (site_in if out is None else site_out)[layer] = value

        with Hooks() as hooks:
            hooks.post(a.embed, store("embed"))
            for module in norm_modules:
                if lean:
                    spec = a.norm_spec(module)
                    hooks.post(
                        module,
                        lambda x, out, m=module, s=spec: scales.__setitem__(m, s.scale(x[0])),
                    )
                else:
                    hooks.post(module, store(module))
            for i in layers:
                site = a.input_site_module(i, self.input_site)
                out_site = a.output_site_module(i, self.output_site)
                if lean:
                    hooks.post(
                        a.attn(i), lambda x, out, i=i: seen.__setitem__(("attn", i), out[1][0])
                    )
                    hooks.pre(site, partial(lean_site, i, out=None))
                    hooks.post(out_site, partial(lean_site, i))
                else:
                    hooks.post(a.attn(i), store(("attn", i)))
                    hooks.pre(site, partial(store(("in", i)), out=None))
                    hooks.post(out_site, store(("out", i)))
            keep = {"logits_to_keep": 1} if last_logits_only else {}
            logits = self.model(input_ids[None].to(a.device), **keep).logits[0]
        if lean:
            patterns = [seen.pop(("attn", i)) for i in layers]
            attention, norms = [], {}
        else:
            attention = [seen[("attn", i)] for i in layers]
            patterns = [out[1][0] for _, out in attention]
            attention = [Frozen(x, out[0]) for x, out in attention]
            norms = {m: Frozen(*seen[m]) for m in norm_modules}
            site_in = torch.stack([self._site_value(i, seen[("in", i)][0]) for i in layers])
            site_out = torch.stack([seen[("out", i)][1][0] for i in layers])
        acts = self._encode(site_in)
        tc = self.transcoder
        recon = tc.decode(acts, site_in.to(tc.dtype) if tc.W_skip is not None else None)
        return PromptRun(
            input_ids=input_ids.cpu(),
            logits=logits,
            token_vectors=seen["embed"][1][0],
            patterns=patterns,
            attention=attention,
            norms=norms,
            site_in=site_in,
            site_out=site_out,
            activations=acts,
            reconstruction=recon.to(site_out.dtype),
            scales=scales,
        )

    def _site_value(
        self, layer: int, x: torch.Tensor, run: PromptRun | None = None
    ) -> torch.Tensor:
        """Input-site value [n, d] from the hooked module's input [1, n, d]. `mlp_in_unweighted`
        is computed from the pre-MLP norm's input, with the scale frozen at `run`'s if given."""
        x = x[0]
        if self.input_site != "mlp_in_unweighted":
            return x
        spec = self.adapter.input_site_norm(layer, self.input_site)
        norm = self.adapter.mlp_norm(layer)
        return spec.linear(x, spec.scale(x) if run is None else run.scale(spec, norm))

    def _encode(self, site_in: torch.Tensor) -> torch.Tensor:
        tc = self.transcoder
        acts = tc.encode(site_in.to(tc.dtype))
        if self.zero_first_position:
            acts[:, 0] = 0
        return acts

    def encode_layer(self, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activations, activations) [n, F] of one layer's features for site values x [n, d]
        (position 0 zeroed if asked)."""
        tc = self.transcoder
        pre = tc.layer_pre_activations(x, layer)
        # `activate` works on all layers at once; give it this layer's pre-activations everywhere.
        acts = tc.activate(pre.expand(tc.n_layers, *pre.shape))[layer]
        if self.zero_first_position:
            acts = torch.cat([torch.zeros_like(acts[:1]), acts[1:]])
        return pre, acts

    def decode_layer(self, acts: list[torch.Tensor], layer: int) -> torch.Tensor:
        """Reconstruction [n, d] at `layer`'s output site from the activations of layers <= layer
        (bias included, skip excluded)."""
        tc = self.transcoder
        out = tc.b_dec[layer].expand(acts[0].shape[0], -1)
        for source in range(layer + 1):
            if layer in tc.output_layers(source):
                out = out + tc.decode_contribution(acts[source], source, layer)
        return out

    def skip(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        tc = self.transcoder
        return x.to(tc.W_skip.dtype) @ tc.W_skip[layer]

    # ---- frozen modules --------------------------------------------------------------------------
    def freeze_norms(self, hooks: Hooks, run: PromptRun) -> None:
        """Hold every normalisation scale at its clean value (final norm included)."""
        run.require_frozen()
        for module, frozen in run.norms.items():
            spec = self.adapter.norm_spec(module)
            scale = spec.scale(frozen.inp)

            def hook(x, out, f=frozen, spec=spec, scale=scale):
                return f.out + spec.linear(x - f.inp, scale).to(f.out.dtype)

            hooks.post(module, hook)

    def freeze_attention(self, hooks: Hooks, run: PromptRun) -> None:
        """Hold every attention pattern at its clean value."""
        run.require_frozen()
        for layer in range(self.adapter.n_layers):
            w_v, w_o = self.adapter.ov_weights(layer)
            frozen, pattern = run.attention[layer], run.patterns[layer]

            def hook(x, out, f=frozen, pattern=pattern, w_v=w_v, w_o=w_o):
                return f.out + ov_linear(pattern, w_v, w_o, x - f.inp), out[1]

            hooks.post(self.adapter.attn(layer), hook)

    def site_hooks(
        self, hooks: Hooks, on_input, on_output, frozen_scales: PromptRun | None = None
    ) -> None:
        """Call `on_input(layer, x [n, d])` at every input site (before the MLP runs) and
        `on_output(layer, x_site, out [1, n, d]) -> new out` at every output site. With
        `frozen_scales`, a normalised input site uses that run's norm scales."""
        a = self.adapter
        current: dict[int, torch.Tensor] = {}
        for layer in range(a.n_layers):

            def read(x, layer=layer):
                current[layer] = self._site_value(layer, x, frozen_scales)
                on_input(layer, current[layer])

            def write(x, out, layer=layer):
                return on_output(layer, current[layer], out)

            hooks.pre(a.input_site_module(layer, self.input_site), read)
            hooks.post(a.output_site_module(layer, self.output_site), write)

    # ---- the local replacement model -------------------------------------------------------------
    def replacement_logits(self, run: PromptRun) -> torch.Tensor:
        """Logits [n, vocab] of the local replacement model on the recorded prompt: frozen
        attention and norms, MLP outputs = reconstruction from features computed on the fly +
        the recorded errors."""
        acts: list[torch.Tensor] = []

        def on_input(layer, x):
            acts.append(self.encode_layer(x, layer)[1])

        def on_output(layer, x, out):
            new = self.decode_layer(acts, layer)
            if self.transcoder.W_skip is not None:
                new = new + self.skip(x, layer)
            return (new.to(out.dtype) + run.errors[layer])[None]

        with Hooks() as hooks:
            self.freeze_norms(hooks, run)
            self.freeze_attention(hooks, run)
            self.site_hooks(hooks, on_input, on_output, frozen_scales=run)
            return self.model(run.input_ids[None].to(self.adapter.device)).logits[0]
