"""Load a causal LM and tokenize prompts the way circuit-tracer does."""

from __future__ import annotations

import torch
from torch import nn

from circuitmap.models.adapter import SUPPORTED_FAMILIES

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_model(
    name_or_path: str, device: str = "cpu", dtype: str | torch.dtype = "float32"
) -> tuple[nn.Module, object]:
    """(model, tokenizer) from a local directory or a hub name (the hub needs access and network).

    Eager attention is requested because the attribution reads attention patterns."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=resolve_dtype(dtype), attn_implementation="eager"
    )
    if model.config.model_type not in SUPPORTED_FAMILIES:
        raise ValueError(
            f"model {name_or_path!r} has unsupported type {model.config.model_type!r}; "
            f"supported: {', '.join(SUPPORTED_FAMILIES)}"
        )
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    return model.to(device).eval(), tokenizer


def tokenize(tokenizer, prompt: str | list[int] | torch.Tensor) -> torch.Tensor:
    """Token ids [n] without the tokenizer's own special tokens, with a special token prepended
    when the first token is not one already (circuit-tracer's convention: position 0 is then a
    BOS-like token whose features and errors are left out of the graph)."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("empty prompt")
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
    else:
        ids = torch.as_tensor(prompt).reshape(-1).tolist()
    if not ids:
        raise ValueError("empty prompt")
    special = set(tokenizer.all_special_ids)
    if ids[0] not in special:
        candidates = [tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id]
        # `if t`, not `if t is not None`: circuit-tracer picks with filter(None, ...), which also
        # passes over a token id 0.
        first = next((t for t in [*candidates, *tokenizer.all_special_ids] if t), None)
        if first is not None:
            ids = [first, *ids]
    return torch.tensor(ids, dtype=torch.long)
