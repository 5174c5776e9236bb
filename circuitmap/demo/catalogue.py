"""The demo's feature catalogue: one use of the general builder (`circuitmap.catalogue`).

For every feature of the demo CLT over every corpus sentence: its top activating contexts, its
density, its mean and largest activation, its top and bottom logit effects and a label naming the
concept it stands for (`circuitmap.demo.stages.demo_label`). The demo keeps no quantile bins: its
catalogue is what the circuit checks read, and the checks need the top contexts only.

The catalogue is a cached stage inside the CLT's directory (`catalogue-<hash>/`), so it lives with
the transcoder it describes and is rebuilt when the CLT or the settings change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from circuitmap.catalogue import (
    CATALOGUE_FILE,
    CatalogueSettings,
    Context,
    FeatureCard,
    auto_label,
    label_features,
    load_catalogue,
    save_catalogue,
)
from circuitmap.catalogue import feature_catalogue as general_catalogue
from circuitmap.demo.artifacts import cached_stage, is_built, stage_dir, torch_threads
from circuitmap.transcoders import Transcoder, load_transcoder

CATALOGUE_STAGE_VERSION = 2

__all__ = [
    "CATALOGUE_FILE",
    "CatalogueConfig",
    "Context",
    "FeatureCard",
    "auto_label",
    "build_catalogue",
    "catalogue_dir",
    "feature_catalogue",
    "label_features",
    "load_catalogue",
]


@dataclass(frozen=True)
class CatalogueConfig:
    """The demo stage's settings (hashed into its directory name: keep the fields as they are)."""

    n_contexts: int = 10
    n_logits: int = 10
    batch_texts: int = 256

    def settings(self) -> CatalogueSettings:
        return CatalogueSettings(
            n_contexts=self.n_contexts, n_logits=self.n_logits, batch_texts=self.batch_texts,
            quantile_bins=0, per_bin=0, samples=0,
        )  # fmt: skip


def feature_catalogue(
    model: nn.Module,
    tokenizer,
    transcoder: Transcoder,
    texts: Sequence[str],
    config: CatalogueConfig = CatalogueConfig(),
    label: Callable[[FeatureCard], str] | None = None,
) -> list[FeatureCard]:
    """Catalogue entries of every feature (layer-major). `label` names a card (default:
    `auto_label`)."""
    cards, _ = general_catalogue(
        model, tokenizer, transcoder, texts, config.settings(), label=label
    )
    return list(cards)


def _inputs(
    config: CatalogueConfig, corpus_texts: Sequence[str], label_version: int
) -> dict[str, object]:
    return {"config": asdict(config), "n_texts": len(corpus_texts), "label_version": label_version}


def catalogue_dir(
    clt_dir: Path,
    corpus_texts: Sequence[str],
    config: CatalogueConfig = CatalogueConfig(),
    label_version: int = 0,
) -> Path:
    """Where the catalogue of the CLT in `clt_dir` lives (built or not): inside it."""
    inputs = _inputs(config, corpus_texts, label_version)
    return stage_dir("catalogue", CATALOGUE_STAGE_VERSION, inputs, clt_dir)


def build_catalogue(
    model_dir: Path,
    clt_dir: Path,
    corpus_texts: Sequence[str],
    *,
    config: CatalogueConfig = CatalogueConfig(),
    label: Callable[[FeatureCard], str] | None = None,
    label_version: int = 0,
    threads: int | None = None,
    rebuild: bool = False,
) -> Path:
    """The catalogue stage of a built CLT (`catalogue.json` in `clt_dir/catalogue-<hash>/`),
    computed if not cached. `corpus_texts` are the sentences searched for contexts (they come from
    the model's corpus, which the CLT directory's name already pins: only their count is hashed);
    `label_version` must change when `label` does."""
    from circuitmap.demo.model import load_model

    if not is_built(clt_dir):
        raise FileNotFoundError(f"{clt_dir} is not a built transcoder stage")

    def build(out: Path) -> None:
        model, tokenizer = load_model(model_dir)
        tc = load_transcoder(clt_dir)
        with torch_threads(threads), torch.no_grad():
            cards = feature_catalogue(model, tokenizer, tc, corpus_texts, config, label)
        save_catalogue(cards, out / CATALOGUE_FILE)

    inputs = _inputs(config, corpus_texts, label_version)
    return cached_stage(
        "catalogue", CATALOGUE_STAGE_VERSION, inputs, build, root=clt_dir, rebuild=rebuild
    )
