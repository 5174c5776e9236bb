"""Transcoders (PLT and CLT): the module, file formats (ours and circuit-tracer's), training."""

from circuitmap.transcoders.formats import load_transcoder, save_transcoder
from circuitmap.transcoders.lazy import LazyTranscoder
from circuitmap.transcoders.transcoder import (
    Transcoder,
    TranscoderConfig,
    TranscoderFormatError,
    check_compatible,
)

__all__ = [
    "LazyTranscoder",
    "Transcoder",
    "TranscoderConfig",
    "TranscoderFormatError",
    "check_compatible",
    "load_transcoder",
    "save_transcoder",
]
