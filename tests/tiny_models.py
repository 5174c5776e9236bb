"""Tiny random models of every supported family and random transcoders, for fast exact tests."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from bench.fixtures import (
    World,
    WorldSpec,
    calibrated_transcoder,
    nudge_thresholds,
    site_activations,
)
from circuitmap.demo.tokenizer import build_tokenizer
from circuitmap.transcoders import Transcoder, TranscoderConfig, save_transcoder

FAMILIES = ("gpt2", "llama", "qwen2", "gemma2")
WORDS = [
    "the",
    "capital",
    "of",
    "state",
    "containing",
    "dallas",
    "texas",
    "austin",
    "is",
    "in",
    "a",
    "city",
]
N_LAYERS, D_MODEL, N_FEATURES = 3, 32, 48


def tiny_tokenizer():
    return build_tokenizer(WORDS, max_number=9)


def tiny_model(family: str, seed: int = 0) -> torch.nn.Module:
    """A random model with non-trivial norm weights; eager attention (patterns are read)."""
    torch.manual_seed(seed)
    vocab = len(tiny_tokenizer())
    common = {
        "vocab_size": vocab,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
        "initializer_range": 0.1,
    }
    llama_like = {
        "hidden_size": D_MODEL,
        "intermediate_size": 64,
        "num_hidden_layers": N_LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32,
    }
    if family == "gpt2":
        config = GPT2Config(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=4, n_positions=32, **common)
        model = GPT2LMHeadModel(config)
    elif family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**llama_like, **common))
    elif family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**llama_like, **common))
    elif family == "qwen3":  # not in FAMILIES: the circuit-tracer equality tests use it
        model = Qwen3ForCausalLM(Qwen3Config(**llama_like, **common, head_dim=8))
    elif family == "gemma2":
        config = Gemma2Config(
            **llama_like,
            **common,
            head_dim=8,
            query_pre_attn_scalar=8,
            sliding_window=4,
            final_logit_softcapping=5.0,
            attn_logit_softcapping=20.0,
        )
        model = Gemma2ForCausalLM(config)
    else:
        raise ValueError(family)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                param.add_(0.3 * torch.randn_like(param))
    return model.eval()


def tiny_transcoder(
    kind: str = "clt",
    *,
    seed: int = 0,
    skip: bool = False,
    input_site: str = "resid_mid",
    output_site: str = "mlp_out",
    activation: str = "jumprelu",
) -> Transcoder:
    """Random transcoder with a fraction of its features active on typical inputs."""
    gen = torch.Generator().manual_seed(seed)
    config = TranscoderConfig(
        kind=kind,
        n_layers=N_LAYERS,
        d_model=D_MODEL,
        n_features=N_FEATURES,
        activation=activation,
        topk=6 if activation == "topk" else None,
        input_site=input_site,
        output_site=output_site,
        skip=skip,
        name=f"tiny-{kind}",
    )
    tc = Transcoder(config)
    tc.init_weights(gen)
    with torch.no_grad():
        tc.b_enc.normal_(-1.0, 0.5, generator=gen)
        tc.b_dec.normal_(0.0, 0.1, generator=gen)
        if skip:
            tc.W_skip.normal_(0.0, 0.05, generator=gen)
    return tc


def zero_constants(model: torch.nn.Module, tc: Transcoder) -> None:
    """Zero every bias, positional embedding and decoder bias: then the graph accounts for all of
    a feature's pre-activation (minus its encoder bias) and of a demeaned logit."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias") or "wpe" in name:
                param.zero_()
        tc.b_dec.zero_()


def save_tiny_checkpoint(family: str, directory: Path, seed: int = 0) -> Path:
    """A tiny model of `family` saved with the word-level tokenizer, its tokenizer_config.json
    declaring PreTrainedTokenizerFast as a custom checkpoint would (and as transformers 4.x, which
    circuit-tracer runs on, can read). A GPT-2 config also gets `n_ctx`, which transformers 5
    no longer writes and TransformerLens reads."""
    tiny_model(family, seed).save_pretrained(directory)
    if family == "gpt2":
        model_config = json.loads((directory / "config.json").read_text())
        model_config["n_ctx"] = model_config["n_positions"]
        (directory / "config.json").write_text(json.dumps(model_config, indent=2))
    tiny_tokenizer().save_pretrained(directory)
    config_file = directory / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}))
    return directory


@dataclass(frozen=True)
class PeerCase:
    """A tiny model family and transcoder sites to compare with circuit-tracer (nnsight backend:
    its architectures and hook points; `circuitmap.transcoders.formats` maps our sites)."""

    family: str
    kind: str  # "clt" | "plt"
    input_site: str
    output_site: str
    n_features: int = 256
    l0: int = 12

    @property
    def name(self) -> str:
        return f"{self.family}-{self.kind}-{self.input_site}-{self.output_site}"


def build_peer_world(case: PeerCase, root: Path, lengths: tuple[int, ...] = (5, 12)) -> World:
    """A saved tiny model of `case.family` (portable to circuit-tracer's transformers 4.x) and a
    JumpReLU transcoder in circuit-tracer's format, calibrated on the tiny vocabulary's random
    sentences as `bench.fixtures` does for its Llama worlds (about `l0` active features per layer
    and token, thresholds moved off the prompts' pre-activations)."""
    spec = WorldSpec(
        case.name, N_LAYERS, D_MODEL, case.n_features, kind=case.kind, l0=case.l0, seed=1
    )
    model_dir = save_tiny_checkpoint(case.family, root / "model")
    model, tokenizer = tiny_model(case.family).eval(), tiny_tokenizer()
    words = [*WORDS, *map(str, range(10))]
    rng = random.Random(spec.seed)
    prompts = [" ".join(rng.choice(words) for _ in range(n)) for n in lengths]
    calibration = [" ".join(rng.choice(words) for _ in range(16)) for _ in range(16)]
    xs, ys = site_activations(model, tokenizer, calibration, case.input_site)
    tc = calibrated_transcoder(spec, xs, ys)
    tc.config = replace(tc.config, input_site=case.input_site, output_site=case.output_site)
    nudge_thresholds(tc, site_activations(model, tokenizer, prompts, case.input_site)[0])
    transcoder_dir = save_transcoder(tc, root / "transcoders", format="circuit-tracer")
    return World(spec, model_dir, transcoder_dir, prompts)
