"""Tiny random models of every supported family and random transcoders, for fast exact tests."""

from __future__ import annotations

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
)

from circuitmap.demo.tokenizer import build_tokenizer
from circuitmap.transcoders import Transcoder, TranscoderConfig

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
