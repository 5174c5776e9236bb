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
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=resolve_dtype(dtype), attn_implementation="eager"
    )
    if model.config.model_type not in SUPPORTED_FAMILIES:
        raise ValueError(
            f"model {name_or_path!r} has unsupported type {model.config.model_type!r}; "
            f"supported: {', '.join(SUPPORTED_FAMILIES)}"
        )
    tokenizer = load_tokenizer(name_or_path)
    return model.to(device).eval(), tokenizer


def load_tokenizer(name_or_path: str):
    """The tokenizer class the checkpoint declares (`tokenizer_class` in tokenizer_config.json),
    so that its saved tokenizer.json tokenizes as saved; AutoTokenizer's pick when it declares
    none that transformers has.

    transformers 5 maps a model type to that family's tokenizer class even when the checkpoint
    declares a generic one: a qwen2 model saved with a word-level tokenizer (declared
    PreTrainedTokenizerFast) got Qwen2Tokenizer, which rebuilds a BPE without merges from the
    vocabulary, so circuitmap tokenized differently from the saved tokenizer (and from
    circuit-tracer). Real checkpoints declare their family's class: for them nothing changes."""
    import transformers
    from transformers import AutoTokenizer
    from transformers.models.auto.tokenization_auto import get_tokenizer_config

    declared = get_tokenizer_config(name_or_path).get("tokenizer_class")
    cls = getattr(transformers, declared, None) if isinstance(declared, str) else None
    if cls is None or not hasattr(cls, "from_pretrained"):
        return AutoTokenizer.from_pretrained(name_or_path)
    return cls.from_pretrained(name_or_path)


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
