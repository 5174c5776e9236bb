"""Model side: load Hugging Face causal LMs and locate their modules per family."""

from circuitmap.models.adapter import (
    SUPPORTED_FAMILIES,
    ModelAdapter,
    NormSpec,
    ov_linear,
    ov_transpose,
)
from circuitmap.models.hooks import Hooks
from circuitmap.models.loading import DTYPES, load_model, load_tokenizer, resolve_dtype, tokenize

__all__ = [
    "DTYPES",
    "SUPPORTED_FAMILIES",
    "Hooks",
    "ModelAdapter",
    "NormSpec",
    "load_model",
    "load_tokenizer",
    "ov_linear",
    "ov_transpose",
    "resolve_dtype",
    "tokenize",
]
