"""Where each model family keeps its modules, and the frozen-linear maps the method needs.

The attribution method treats a transformer, with attention patterns and normalisation scales held
at their values on one prompt, as a linear map of the residual stream. A `ModelAdapter` names the
real Hugging Face modules of one family (so hooks go on them) and gives the two linear pieces that
this needs per layer: a normalisation with a frozen scale, and attention with a frozen pattern
(its OV circuit). Everything else (MLPs, biases, positional embeddings) is either replaced by
transcoder features or a constant.

Families: GPT-2 (`gpt2`), Llama layout (`llama`, `mistral`, `qwen2`, `qwen3`, `gemma` v1) and
Gemma-2 (`gemma2`).

Sites (what transcoders read and write; names from `circuitmap.transcoders`), per layer l:
  resid_mid          residual stream after attention: the input of the norm before the MLP.
  mlp_in             the MLP module's input (after that norm).
  mlp_in_unweighted  that norm's normalised input before its weight (and bias).
  mlp_out            the MLP module's output. On Gemma-2 this is *before*
                     `post_feedforward_layernorm`, which then maps it (frozen scale) into the
                     residual stream.
  mlp_out_post_norm  the MLP branch's contribution to the residual stream: on Gemma-2 the output
                     of `post_feedforward_layernorm` (TransformerLens `hook_mlp_out`, which
                     GemmaScope transcoders reconstruct); elsewhere the same as `mlp_out`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from circuitmap.transcoders.transcoder import INPUT_SITES, OUTPUT_SITES

_LLAMA_LAYOUT = ("llama", "mistral", "qwen2", "qwen3", "gemma")
SUPPORTED_FAMILIES = ("gpt2", *_LLAMA_LAYOUT, "gemma2")


@dataclass(frozen=True)
class NormSpec:
    """A LayerNorm or RMSNorm reduced to what a frozen scale leaves of it: y = c(x) * w / s + b."""

    weight: torch.Tensor  # [d] effective weight (1 + w on Gemma)
    bias: torch.Tensor | None  # [d] or None
    eps: float
    centered: bool  # LayerNorm subtracts the mean; RMSNorm does not

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The denominator s [..., 1] the real module computes for input x (in float32)."""
        x = x.float()
        if self.centered:
            x = x - x.mean(-1, keepdim=True)
        return torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def linear(self, delta: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The norm's action on a change `delta` of its input, with the scale frozen."""
        if self.centered:
            delta = delta - delta.mean(-1, keepdim=True)
        return delta * (self.weight / scale).to(delta.dtype)

    def transpose(self, grad: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The adjoint of `linear`: pulls a gradient at the output back to the input."""
        grad = grad * (self.weight / scale).to(grad.dtype)
        if self.centered:
            grad = grad - grad.mean(-1, keepdim=True)
        return grad


def _check_site(site: str, known: tuple[str, ...]) -> None:
    if site not in known:
        raise ValueError(f"unknown transcoder site {site!r}; expected one of {known}")


def _norm_spec(module: nn.Module, family: str) -> NormSpec:
    weight = module.weight.detach()
    if family in ("gemma", "gemma2"):
        weight = weight.float() + 1.0
    eps = next(getattr(module, a) for a in ("eps", "variance_epsilon") if hasattr(module, a))
    bias = getattr(module, "bias", None)
    return NormSpec(
        weight=weight.float(),
        bias=None if bias is None else bias.detach().float(),
        eps=float(eps),
        centered=isinstance(module, nn.LayerNorm),
    )


class ModelAdapter:
    """The modules and frozen-linear pieces of one Hugging Face causal LM."""

    def __init__(self, model: nn.Module):
        config = model.config
        family = config.model_type
        if family not in SUPPORTED_FAMILIES:
            raise ValueError(
                f"unsupported model type {family!r}; supported: {', '.join(SUPPORTED_FAMILIES)}"
            )
        if getattr(config, "_attn_implementation", "eager") != "eager":
            # Frozen patterns are read from the attention modules' outputs: only eager returns them.
            model.set_attn_implementation("eager")
        self.model = model
        self.family = family
        self.config = config
        if family == "gpt2":
            base = model.transformer
            self.embed, self.pos_embed, self.layers = base.wte, base.wpe, list(base.h)
            self.final_norm = base.ln_f
            self.n_heads = self.n_kv_heads = config.n_head
            self.n_ctx = config.n_positions
        else:
            base = model.model
            self.embed, self.pos_embed, self.layers = base.embed_tokens, None, list(base.layers)
            self.final_norm = base.norm
            self.n_heads = config.num_attention_heads
            self.n_kv_heads = getattr(config, "num_key_value_heads", None) or self.n_heads
            self.n_ctx = config.max_position_embeddings
        self.unembed = model.get_output_embeddings()
        self.n_layers = len(self.layers)
        self.d_model = config.hidden_size
        self.head_dim = getattr(config, "head_dim", None) or self.d_model // self.n_heads
        self.vocab_size = self.unembed.weight.shape[0]
        self.logit_softcap = getattr(config, "final_logit_softcapping", None)

    # ---- modules -------------------------------------------------------------------------------
    def attn_norm(self, layer: int) -> nn.Module:
        block = self.layers[layer]
        return block.ln_1 if self.family == "gpt2" else block.input_layernorm

    def attn(self, layer: int) -> nn.Module:
        block = self.layers[layer]
        return block.attn if self.family == "gpt2" else block.self_attn

    def post_attn_norm(self, layer: int) -> nn.Module | None:
        """Gemma-2 normalises the attention output before adding it to the residual stream."""
        return self.layers[layer].post_attention_layernorm if self.family == "gemma2" else None

    def mlp_norm(self, layer: int) -> nn.Module:
        block = self.layers[layer]
        if self.family == "gpt2":
            return block.ln_2
        if self.family == "gemma2":
            return block.pre_feedforward_layernorm
        return block.post_attention_layernorm

    def mlp(self, layer: int) -> nn.Module:
        return self.layers[layer].mlp

    def post_mlp_norm(self, layer: int) -> nn.Module | None:
        return self.layers[layer].post_feedforward_layernorm if self.family == "gemma2" else None

    def norms(self, layer: int) -> dict[str, nn.Module]:
        """Every normalisation of one block, by role (absent roles left out)."""
        found = {
            "attn": self.attn_norm(layer),
            "post_attn": self.post_attn_norm(layer),
            "mlp": self.mlp_norm(layer),
            "post_mlp": self.post_mlp_norm(layer),
        }
        return {role: module for role, module in found.items() if module is not None}

    def input_site_module(self, layer: int, site: str) -> nn.Module:
        """The module whose *input* is the given transcoder input site, or from whose input it
        is computed (`mlp_in_unweighted` = the pre-MLP norm's input normalised, unweighted)."""
        _check_site(site, INPUT_SITES)
        return self.mlp(layer) if site == "mlp_in" else self.mlp_norm(layer)

    def input_site_norm(self, layer: int, site: str) -> NormSpec | None:
        """The normalisation between resid_mid and the input site (None for resid_mid)."""
        _check_site(site, INPUT_SITES)
        if site == "resid_mid":
            return None
        spec = self.norm_spec(self.mlp_norm(layer))
        if site == "mlp_in":
            return spec
        return NormSpec(torch.ones_like(spec.weight), None, spec.eps, spec.centered)

    def output_site_module(self, layer: int, site: str) -> nn.Module:
        """The module whose *output* is the given transcoder output site."""
        _check_site(site, OUTPUT_SITES)
        post = self.post_mlp_norm(layer)
        return post if site == "mlp_out_post_norm" and post is not None else self.mlp(layer)

    def output_site_norm(self, layer: int, site: str) -> NormSpec | None:
        """The normalisation between the output site and the residual stream (Gemma-2's
        post_feedforward_layernorm when transcoders write the raw MLP output), else None."""
        _check_site(site, OUTPUT_SITES)
        post = self.post_mlp_norm(layer)
        return self.norm_spec(post) if site == "mlp_out" and post is not None else None

    # ---- frozen-linear pieces --------------------------------------------------------------------
    def norm_spec(self, module: nn.Module) -> NormSpec:
        return _norm_spec(module, self.family)

    def ov_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_V [n_kv_heads*head_dim, d], W_O [d, n_heads*head_dim]) as nn.Linear weights
        (v = x @ W_V.T, out = z @ W_O.T). GPT-2's Conv1D stores the transpose."""
        attn = self.attn(layer)
        if self.family == "gpt2":
            w_v = attn.c_attn.weight[:, 2 * self.d_model :].T
            return w_v.detach(), attn.c_proj.weight.T.detach()
        return attn.v_proj.weight.detach(), attn.o_proj.weight.detach()

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding [d, vocab]."""
        return self.unembed.weight.detach().T

    @property
    def device(self) -> torch.device:
        return self.unembed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unembed.weight.dtype


def ov_linear(
    pattern: torch.Tensor, w_v: torch.Tensor, w_o: torch.Tensor, delta: torch.Tensor
) -> torch.Tensor:
    """Attention with a frozen pattern [H, n, n] applied to a change `delta` [B, n, d] of its
    (normalised) input: biases cancel, what is left is W_O . A . W_V."""
    n_heads = pattern.shape[0]
    b, n, _ = delta.shape
    v = (delta @ w_v.T).view(b, n, -1, w_o.shape[1] // n_heads)  # [B, n, Hkv, dh]
    v = v.repeat_interleave(n_heads // v.shape[2], dim=2)  # GQA: head h reads kv head h // rep
    z = torch.einsum("hqk,bkhe->bqhe", pattern.to(delta.dtype), v)
    return z.reshape(b, n, -1) @ w_o.T


def ov_transpose(
    pattern: torch.Tensor, w_v: torch.Tensor, w_o: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    """The adjoint of `ov_linear`: gradient at the attention output [B, n, d] -> at its input."""
    n_heads = pattern.shape[0]
    b, n, _ = grad.shape
    head_dim = w_o.shape[1] // n_heads
    n_kv = w_v.shape[0] // head_dim
    g = (grad @ w_o).view(b, n, n_heads, head_dim)
    gv = torch.einsum("hqk,bqhe->bkhe", pattern.to(grad.dtype), g)
    gv = gv.view(b, n, n_kv, n_heads // n_kv, head_dim).sum(3)
    return gv.reshape(b, n, -1) @ w_v
