"""A model, transcoders and prompts that both circuitmap and circuit-tracer load, for comparisons.

The model is a Llama-style `LlamaForCausalLM` with random weights and a word-level tokenizer
(words `w0 .. w{V-1}`, one token each), saved so that both our transformers (5.x) and
circuit-tracer's pinned transformers (4.57) read it. Random transcoders would fire on half of all
features; ours get JumpReLU thresholds calibrated on held-out prompts so that about `l0` features
per layer fire per token, as in trained transcoders, and decoders scaled to the MLP outputs.

JumpReLU compares `pre > threshold`; a pre-activation that equals a threshold to within float
rounding could be active in one implementation and not in the other, which would say nothing about
either. So thresholds are then moved off every pre-activation the benchmark prompts produce, by a
margin far above float32 rounding (`nudge_thresholds`); the equality check still reports any
feature-set difference it finds.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from circuitmap.models import Hooks, ModelAdapter
from circuitmap.transcoders import Transcoder, TranscoderConfig, save_transcoder

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


@dataclass(frozen=True)
class WorldSpec:
    """One benchmark size: model shape, transcoder shape and sparsity, prompt lengths."""

    name: str
    n_layers: int
    d_model: int
    n_features: int  # per layer
    kind: str = "clt"  # "clt" | "plt"
    prompt_lengths: tuple[int, ...] = (8, 32)  # words per prompt (BOS is added on top)
    n_heads: int = 4
    vocab: int = 1000
    l0: int = 24  # target active features per layer per token
    skip: bool = (
        False  # a linear skip connection (per-layer transcoders only, as in circuit-tracer)
    )
    seed: int = 0

    @property
    def d_mlp(self) -> int:
        return 4 * self.d_model

    @property
    def input_site(self) -> str:
        # circuit-tracer's CLTs read resid_mid, its per-layer transcoders the MLP input.
        return "resid_mid" if self.kind == "clt" else "mlp_in"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class World:
    spec: WorldSpec
    model_dir: Path
    transcoder_dir: Path  # circuit-tracer format (config.yaml)
    prompts: list[str]


def build_tokenizer(vocab: int) -> PreTrainedTokenizerFast:
    words = [f"w{i}" for i in range(vocab)]
    table = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *words])}
    tok = Tokenizer(models.WordLevel(vocab=table, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    pad, unk, bos, eos = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, unk_token=unk, pad_token=pad
    )


def save_portable_tokenizer(tokenizer: PreTrainedTokenizerFast, path: Path) -> None:
    """Save so that transformers 4.x reads it too: 5.x names a class 4.x does not know."""
    tokenizer.save_pretrained(path)
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2))


def build_model(spec: WorldSpec, tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.d_model,
        intermediate_size=spec.d_mlp,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_heads,
        max_position_embeddings=max(256, 2 * max(spec.prompt_lengths)),
        tie_word_embeddings=False,
        initializer_range=0.05,  # livelier than the default 0.02: peakier attention and logits
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(config).eval()


def random_prompts(spec: WorldSpec, lengths: list[int], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(f"w{rng.randrange(spec.vocab)}" for _ in range(n)) for n in lengths]


@torch.no_grad()
def site_activations(
    model: torch.nn.Module,
    tokenizer,
    prompts: list[str],
    input_site: str,
    output_site: str = "mlp_out",
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per prompt (BOS prepended): transcoder inputs and outputs `[L, n, d]` in float32 at the
    given sites. `mlp_in_unweighted` has no module of its own: it is computed from the pre-MLP
    norm's input as that norm does, without the norm's weight."""
    adapter = ModelAdapter(model)
    xs, ys = [], []
    for prompt in prompts:
        ids = [tokenizer.bos_token_id, *tokenizer(prompt, add_special_tokens=False).input_ids]
        x: list[torch.Tensor] = []
        y: list[torch.Tensor] = []
        with Hooks() as hooks:
            for layer in range(adapter.n_layers):
                norm = (
                    adapter.input_site_norm(layer, input_site)
                    if input_site == "mlp_in_unweighted"
                    else None
                )

                def read(t, x=x, norm=norm):
                    v = t[0].float()
                    x.append(v if norm is None else norm.linear(v, norm.scale(v)))

                hooks.pre(adapter.input_site_module(layer, input_site), read)
                module = adapter.output_site_module(layer, output_site)
                hooks.post(module, lambda _i, out, y=y: y.append(out[0].float()))
            model(torch.tensor([ids]))
        xs.append(torch.stack(x))
        ys.append(torch.stack(y))
    return xs, ys


@torch.no_grad()
def calibrated_transcoder(
    spec: WorldSpec, xs: list[torch.Tensor], ys: list[torch.Tensor]
) -> Transcoder:
    """Random unit encoders; thresholds at the (1 - l0/F) quantile of each feature's
    pre-activation over the calibration tokens (BOS left out); decoders random, scaled so that
    `l0` typical activations reconstruct a vector of the MLP output's size; a small random skip
    matrix if asked."""
    config = TranscoderConfig(
        kind=spec.kind,
        n_layers=spec.n_layers,
        d_model=spec.d_model,
        n_features=spec.n_features,
        activation="jumprelu",
        input_site=spec.input_site,
        output_site="mlp_out",
        skip=spec.skip,
        model_name=spec.name,
        name=f"{spec.name}-{spec.kind}",
    )
    tc = Transcoder(config)
    gen = torch.Generator().manual_seed(spec.seed + 1)
    L, F, d = spec.n_layers, spec.n_features, spec.d_model
    x = torch.cat([t[:, 1:] for t in xs], dim=1)  # [L, N, d]
    y = torch.cat([t[:, 1:] for t in ys], dim=1)
    w_enc = torch.randn(L, F, d, generator=gen)
    w_enc /= w_enc.norm(dim=-1, keepdim=True)
    tc.W_enc.copy_(w_enc)
    tc.b_enc.zero_()
    pre = tc.pre_activations(x)  # [L, N, F]
    q = 1.0 - spec.l0 / F
    tc.threshold.copy_(torch.quantile(pre, q, dim=1).clamp(min=1e-3))
    act_size = tc.threshold.mean(dim=1)  # [L] typical activation
    y_norm = (y - y.mean(dim=1, keepdim=True)).norm(dim=-1).mean(dim=1)  # [L]
    tc.b_dec.copy_(y.mean(dim=1))
    for layer, w in enumerate(tc.W_dec):
        v = torch.randn(w.shape, generator=gen)
        v /= v.norm(dim=-1, keepdim=True)
        targets = torch.arange(layer, layer + w.shape[1])
        writers = (targets + 1).float() if spec.kind == "clt" else torch.ones(len(targets))
        scale = y_norm[targets] / (act_size[layer] * (spec.l0 * writers).sqrt())
        w.copy_(v * scale.view(1, -1, 1))
    if tc.W_skip is not None:  # a skip path about a tenth of the MLP output's size
        x_norm = x.norm(dim=-1).mean(dim=1)  # [L]
        w_skip = torch.randn(L, d, d, generator=gen) / d**0.5
        tc.W_skip.copy_(w_skip * (0.1 * y_norm / x_norm).view(-1, 1, 1))
    return tc


@torch.no_grad()
def nudge_thresholds(tc: Transcoder, xs: list[torch.Tensor], rel_margin: float = 1e-3) -> int:
    """Move each threshold that lies within `rel_margin * threshold` of a pre-activation seen on
    the given inputs to the middle of the nearest gap wide enough; returns how many moved."""
    pre = torch.cat([tc.pre_activations(x[:, 1:]) for x in xs], dim=1)  # [L, N, F]
    theta = tc.threshold
    margin = rel_margin * theta.abs()
    close = ((pre - theta.unsqueeze(1)).abs() < margin.unsqueeze(1)).any(dim=1)  # [L, F]
    for layer, feature in close.nonzero().tolist():
        values = torch.sort(pre[layer, :, feature]).values
        t, m = float(theta[layer, feature]), float(margin[layer, feature])
        edges = torch.cat([values.new_tensor([values[0] - 4 * m]), values, values[-1:] + 4 * m])
        mids = (edges[1:] + edges[:-1]) / 2
        wide = (edges[1:] - edges[:-1]) > 2 * m
        best = torch.argmin((mids - t).abs() + (~wide) * 1e30)
        theta[layer, feature] = mids[best]
    return int(close.sum())


def build_world(spec: WorldSpec, root: Path, n_prompts_per_length: int = 2) -> World:
    """Write the model and circuit-tracer-format transcoders under `root` (reused when present)."""
    root = Path(root)
    model_dir, tc_dir = root / "model", root / f"transcoders-{spec.kind}"
    lengths = [n for n in spec.prompt_lengths for _ in range(n_prompts_per_length)]
    prompts = random_prompts(spec, lengths, seed=spec.seed + 2)
    stamp, stamp_doc = root / "spec.json", {**spec.to_dict(), "prompts": prompts}
    if stamp.exists() and json.loads(stamp.read_text()) == stamp_doc:
        return World(spec, model_dir, tc_dir, prompts)
    tokenizer = build_tokenizer(spec.vocab)
    model = build_model(spec, tokenizer)
    model.save_pretrained(model_dir)
    save_portable_tokenizer(tokenizer, model_dir)
    calibration = random_prompts(spec, [max(spec.prompt_lengths)] * 8, seed=spec.seed + 3)
    xs, ys = site_activations(model, tokenizer, calibration, spec.input_site)
    tc = calibrated_transcoder(spec, xs, ys)
    bench_xs, _ = site_activations(model, tokenizer, prompts, spec.input_site)
    nudge_thresholds(tc, bench_xs)
    save_transcoder(tc, tc_dir, format="circuit-tracer")
    stamp.write_text(json.dumps(stamp_doc))
    return World(spec, model_dir, tc_dir, prompts)
