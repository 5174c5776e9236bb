"""The feature catalogue of any model and transcoder over a corpus, streamed in batches.

Pass 1 streams the corpus once, batch by batch, through the model and the transcoder, keeping
per feature only bounded running statistics (`circuitmap.catalogue.stats.LayerStats`): its top
texts, a uniform sample of the texts where it is active (for Neuronpedia-style quantile bins) and
its counts. After every finished batch the state can be checkpointed, so a killed run continues
from its last finished batch and ends with the same catalogue. Pass 2 re-runs only the chosen
texts to read their per-token activations. The logit effects are computed from the weights alone,
in chunks of features so the `[features, vocab]` product never exists whole.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from circuitmap.catalogue.cards import (
    AUTOMATIC,
    CATALOGUE_LINES_FILE,
    Context,
    FeatureCard,
    QuantileBin,
    auto_label,
    save_catalogue,
)
from circuitmap.catalogue.stats import LayerStats
from circuitmap.models import ModelAdapter
from circuitmap.transcoders import Transcoder
from circuitmap.transcoders.activations import ActivationHarvester

CHECKPOINT_FILE = "catalogue.partial.safetensors"
META_FILE = "catalogue.meta.json"
#: Where `build_catalogue_dir` writes, inside the transcoder's directory.
CATALOGUE_DIR = "catalogue"


@dataclass(frozen=True)
class CatalogueSettings:
    """What a catalogue keeps per feature, and how the corpus is streamed."""

    n_contexts: int = 10  # top activating contexts
    n_logits: int = 10  # top and bottom logit effects
    batch_texts: int = 256  # corpus texts per batch
    quantile_bins: int = 5  # equal intervals of (0, max activation]
    per_bin: int = 2  # contexts shown per bin
    samples: int = 32  # uniform sample of active texts kept per feature to fill the bins
    max_seq_len: int = 128  # tokens per text (longer texts are cut)
    logit_chunk: int = 1024  # features per unembedding product

    def __post_init__(self) -> None:
        if min(self.n_contexts, self.n_logits, self.quantile_bins, self.per_bin, self.samples) < 0:
            raise ValueError("catalogue settings must not be negative")
        if min(self.n_contexts, self.batch_texts, self.max_seq_len, self.logit_chunk) < 1:
            raise ValueError(
                "n_contexts, batch_texts, max_seq_len and logit_chunk must be positive"
            )


class InputSource(Protocol):
    """Where transcoder inputs come from: the model run on texts (or, in benchmarks, a stand-in)."""

    def inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """`x [n_tokens, L, d]` at the transcoder's input site for the texts' tokens (BOS
        dropped), and each text's token count."""
        ...

    def tokens(self, text: str) -> list[str]:
        """The text's tokens as `inputs` sees them."""
        ...


class ModelInputs:
    """The transcoder's inputs read from the model's forward pass (forward hooks)."""

    def __init__(self, model: nn.Module, tokenizer, transcoder: Transcoder, max_seq_len: int):
        self.harvester = ActivationHarvester(
            model, tokenizer, transcoder.config.input_site, transcoder.config.output_site,
            max_seq_len=max_seq_len, batch_size=1 << 30,
        )  # fmt: skip

    def inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = self.harvester.harvest(texts)
        lengths = torch.tensor([self.harvester.n_tokens(t) for t in texts])
        return x, lengths

    def tokens(self, text: str) -> list[str]:
        ids = self.harvester.token_ids(text)
        ids = ids[1:] if ids[0] in self.harvester.tokenizer.all_special_ids else ids
        return self.harvester.tokenizer.convert_ids_to_tokens(ids)


@dataclass
class CorpusStats:
    """Pass 1's result: each layer's running statistics and the tokens seen."""

    layers: list[LayerStats]
    n_tokens: int = 0
    next_text: int = 0  # texts before this one are counted
    seconds: float = 0.0


@dataclass
class Progress:
    """What a progress callback hears after each batch."""

    stage: str  # "corpus" (pass 1) or "contexts" (pass 2)
    done: int  # texts done in this stage
    total: int
    tokens: int  # tokens done in this stage


@dataclass
class LogitEffects:
    """Per feature (flat, layer-major) its strongest positive and negative logit effects."""

    top_ids: torch.Tensor  # [L * F, n]
    top_values: torch.Tensor
    bottom_ids: torch.Tensor
    bottom_values: torch.Tensor  # negative effects, most negative first


@dataclass
class CatalogueResult:
    cards: list[FeatureCard] = field(default_factory=list)
    n_tokens: int = 0
    n_texts: int = 0
    seconds: float = 0.0
    resumed_from: int = 0  # texts already counted by a killed run


# ---- pass 1 -------------------------------------------------------------------------------------


def layer_activations(tc: Transcoder, x: torch.Tensor, layer: int) -> torch.Tensor:
    """`[n, F]` float32 activations of one layer's features for its inputs `x [n, d]`, one layer
    at a time so that a wide transcoder never holds `[L, n, F]` (lazy transcoders read their
    encoder in chunks here)."""
    pre = tc.layer_pre_activations(x, layer)
    kind = tc.config.activation
    if kind == "jumprelu":
        return (pre * (pre > tc.threshold[layer])).float()
    if kind == "relu":
        return torch.relu(pre).float()
    values, indices = pre.topk(tc.config.topk, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, torch.relu(values)).float()


def corpus_fingerprint(texts: Sequence[str], tc: Transcoder, settings: CatalogueSettings) -> str:
    """Identifies a pass-1 run: a checkpoint of another corpus, transcoder or setting is refused."""
    digest = hashlib.sha256()
    digest.update(json.dumps([asdict(settings), tc.config.to_dict()], sort_keys=True).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:24]


def scan_corpus(
    source: InputSource,
    tc: Transcoder,
    texts: Sequence[str],
    settings: CatalogueSettings,
    checkpoint: Path | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> CorpusStats:
    """Pass 1 over `texts`, resuming from `checkpoint` when it holds a run of the same inputs, and
    saving it after every batch (atomically: a killed run leaves the last finished batch)."""
    fingerprint = corpus_fingerprint(texts, tc, settings) if checkpoint else ""
    stats = _load_checkpoint(checkpoint, fingerprint, tc) if checkpoint else None
    if stats is None:
        device = tc.device
        stats = CorpusStats([
            LayerStats.empty(tc.n_features, settings.n_contexts, settings.samples,
                             layer * tc.n_features, device)
            for layer in range(tc.n_layers)
        ])  # fmt: skip
    start = time.perf_counter() - stats.seconds
    tokens_before = stats.n_tokens
    for first in range(stats.next_text, len(texts), settings.batch_texts):
        chunk = texts[first : first + settings.batch_texts]
        x, lengths = source.inputs(chunk)
        for layer, layer_stats in enumerate(stats.layers):
            layer_stats.update(layer_activations(tc, x[:, layer], layer), lengths, first)
        stats.n_tokens += int(lengths.sum())
        stats.next_text = first + len(chunk)
        stats.seconds = time.perf_counter() - start
        if checkpoint:
            _save_checkpoint(checkpoint, fingerprint, stats)
        if progress:
            progress(
                Progress("corpus", stats.next_text, len(texts), stats.n_tokens - tokens_before)
            )
    return stats


def _save_checkpoint(path: Path, fingerprint: str, stats: CorpusStats) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for layer, layer_stats in enumerate(stats.layers):
        tensors.update(layer_stats.tensors(f"layer{layer}"))
    meta = {"fingerprint": fingerprint, "n_tokens": str(stats.n_tokens),
            "next_text": str(stats.next_text), "seconds": str(stats.seconds)}  # fmt: skip
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def _load_checkpoint(path: Path, fingerprint: str, tc: Transcoder) -> CorpusStats | None:
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("fingerprint") != fingerprint:
        return None  # another corpus or setting: start over (the file is overwritten)
    tensors = load_file(str(path))
    device = tc.device
    layers = [
        LayerStats.from_tensors(tensors, f"layer{layer}", layer * tc.n_features, device)
        for layer in range(tc.n_layers)
    ]
    return CorpusStats(
        layers, int(meta["n_tokens"]), int(meta["next_text"]), float(meta["seconds"])
    )


# ---- pass 2 -------------------------------------------------------------------------------------


@dataclass
class ContextSlots:
    """The (feature, text) pairs whose per-token activations the cards show."""

    feature: torch.Tensor  # [n] flat feature index
    text: torch.Tensor  # [n] text id
    rank: torch.Tensor  # [n] 0..k-1 top contexts, then k + bin * per_bin + j for bin samples
    values: torch.Tensor | None = None  # [n, max_seq_len] activations, filled by pass 2
    lengths: torch.Tensor | None = None  # [n]


def choose_slots(stats: CorpusStats, settings: CatalogueSettings, n_features: int) -> ContextSlots:
    features, texts, ranks = [], [], []
    for layer, layer_stats in enumerate(stats.layers):
        sampled, _ = layer_stats.quantile_texts(settings.quantile_bins, settings.per_bin)
        chosen = torch.cat([layer_stats.top_texts(), sampled]).cpu()
        rank, column = (chosen >= 0).nonzero(as_tuple=True)
        features.append(column + layer * n_features)
        texts.append(chosen[rank, column])
        ranks.append(rank)
    return ContextSlots(torch.cat(features), torch.cat(texts), torch.cat(ranks))


def read_contexts(
    source: InputSource,
    tc: Transcoder,
    texts: Sequence[str],
    slots: ContextSlots,
    settings: CatalogueSettings,
    progress: Callable[[Progress], None] | None = None,
) -> dict[int, list[str]]:
    """Pass 2: fill `slots.values` from the chosen texts only; returns those texts' tokens."""
    needed = slots.text.unique()
    slots.values = torch.zeros(len(slots.text), settings.max_seq_len)
    slots.lengths = torch.zeros(len(slots.text), dtype=torch.long)
    layer_of, index_of = slots.feature // tc.n_features, slots.feature % tc.n_features
    tokens: dict[int, list[str]] = {}
    done_tokens = 0
    for start in range(0, len(needed), settings.batch_texts):
        ids = needed[start : start + settings.batch_texts]
        chunk = [texts[i] for i in ids.tolist()]
        x, lengths = source.inputs(chunk)
        offsets = lengths.cumsum(0) - lengths
        local = torch.searchsorted(ids, slots.text)
        here = (local < len(ids)) & (ids[local.clamp(max=len(ids) - 1)] == slots.text)
        width = int(lengths.max())
        for layer in range(tc.n_layers):
            pick = (here & (layer_of == layer)).nonzero()[:, 0]
            if len(pick) == 0:
                continue
            acts = layer_activations(tc, x[:, layer], layer)  # [n_tokens, F] on its device
            n = lengths[local[pick]]
            rows = (offsets[local[pick]][:, None] + torch.arange(width)).clamp(max=len(acts) - 1)
            valid = torch.arange(width) < n[:, None]
            picked = acts[rows.to(acts.device), index_of[pick][:, None].to(acts.device)]
            slots.values[pick, :width] = picked.cpu() * valid
            slots.lengths[pick] = n
        for i, text in zip(ids.tolist(), chunk, strict=True):
            tokens[i] = source.tokens(text)
        done_tokens += int(lengths.sum())
        if progress:
            progress(Progress("contexts", start + len(ids), len(needed), done_tokens))
    return tokens


# ---- logit effects ------------------------------------------------------------------------------


@torch.no_grad()
def logit_effects(
    model: nn.Module, tc: Transcoder, n: int, special_ids: Sequence[int], chunk: int = 1024
) -> LogitEffects:
    """Each feature's direct effect on the logits per unit activation: its decoder vectors summed
    over the layers it writes to, times the final norm's weight, through the unembedding, demeaned
    over the vocabulary (the frozen-scale direct path, up to the scale); the `n` largest and
    smallest, special tokens left out. Computed `chunk` features at a time."""
    adapter = ModelAdapter(model)
    device = tc.device
    gain = adapter.norm_spec(adapter.final_norm).weight.float().to(device)
    w_u = adapter.W_U.float().to(device)
    special = torch.tensor(sorted(set(special_ids)), dtype=torch.long, device=device)
    n = min(n, w_u.shape[1] - len(special))
    parts: list[tuple[torch.Tensor, ...]] = []
    for layer in range(tc.n_layers):
        for lo in range(0, tc.n_features, chunk):
            ids = torch.arange(lo, min(lo + chunk, tc.n_features))
            effects = (tc.decoder_vectors(layer, ids).float().sum(1) * gain) @ w_u
            effects = effects - effects.mean(1, keepdim=True)
            effects[:, special] = -float("inf")
            top = effects.topk(n, dim=1)
            effects[:, special] = float("inf")
            bottom = effects.topk(n, dim=1, largest=False)
            parts.append((top.indices, top.values, bottom.indices, bottom.values))
    stacked = [torch.cat([p[i] for p in parts]).cpu() for i in range(4)]
    return LogitEffects(*stacked)


def token_names(tokenizer, ids: Sequence[int]) -> dict[int, str]:
    """Token strings of some ids (ids past the tokenizer, as in padded vocabularies, as `<id>`)."""
    ids = sorted(set(ids))
    names = tokenizer.convert_ids_to_tokens(ids)
    return {i: (name if name is not None else f"<{i}>") for i, name in zip(ids, names, strict=True)}


# ---- cards --------------------------------------------------------------------------------------


def iter_cards(
    tc: Transcoder,
    stats: CorpusStats,
    slots: ContextSlots,
    context_tokens: dict[int, list[str]],
    effects: LogitEffects,
    names: dict[int, str],
    settings: CatalogueSettings,
    label: Callable[[FeatureCard], str] | None = None,
) -> Iterator[FeatureCard]:
    """One card per feature, layer-major, labelled by `label` (default `auto_label`)."""
    order = torch.argsort(slots.feature * (1 << 20) + slots.rank)
    feature_sorted = slots.feature[order]
    bounds = torch.searchsorted(feature_sorted, torch.arange(tc.n_layers * tc.n_features + 1))
    k, per_bin = settings.n_contexts, settings.per_bin
    for layer, layer_stats in enumerate(stats.layers):
        _, edges = layer_stats.quantile_texts(settings.quantile_bins, 0)
        edges = edges.cpu()
        top_value = layer_stats.top_value[0].cpu() if k else torch.zeros(tc.n_features)
        active = layer_stats.active_tokens.cpu()
        total = layer_stats.activation_sum.cpu()
        n_texts = layer_stats.active_texts.cpu()
        for index in range(tc.n_features):
            flat = layer * tc.n_features + index
            top: list[Context] = []
            bins = [
                QuantileBin(round(float(edges[b, index]), 5), round(float(edges[b + 1, index]), 5))
                for b in range(settings.quantile_bins)
            ]
            for s in order[bounds[flat] : bounds[flat + 1]].tolist():
                length, rank = int(slots.lengths[s]), int(slots.rank[s])
                values = [round(a, 4) + 0.0 for a in slots.values[s, :length].tolist()]  # no -0.0
                context = Context(context_tokens[int(slots.text[s])], values)
                if rank < k:
                    top.append(context)
                else:
                    bins[(rank - k) // per_bin].contexts.append(context)
            n_active = float(active[index])
            highest = float(top_value[index])
            # a batch's sum is float32: a feature that fires at one value everywhere could
            # otherwise get a mean a rounding error above its maximum
            mean = min(float(total[index]) / n_active, highest) if n_active else 0.0
            card = FeatureCard(
                layer=layer,
                index=index,
                label="",
                density=n_active / max(stats.n_tokens, 1),
                active_texts=int(n_texts[index]),
                mean_activation=mean,
                max_activation=highest,
                top_logits=[names[i] for i in effects.top_ids[flat].tolist()],
                top_logit_effects=[round(v, 5) for v in effects.top_values[flat].tolist()],
                bottom_logits=[names[i] for i in effects.bottom_ids[flat].tolist()],
                bottom_logit_effects=[round(v, 5) for v in effects.bottom_values[flat].tolist()],
                top_contexts=top,
                quantiles=[b for b in bins if b.contexts],
                label_source=AUTOMATIC,
            )
            card.label = (label or auto_label)(card)
            yield card


@torch.no_grad()
def feature_catalogue(
    model: nn.Module,
    tokenizer,
    tc: Transcoder,
    texts: Sequence[str],
    settings: CatalogueSettings = CatalogueSettings(),
    *,
    label: Callable[[FeatureCard], str] | None = None,
    checkpoint: Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    source: InputSource | None = None,
) -> tuple[Iterator[FeatureCard], CatalogueResult]:
    """Both passes and the logit effects; returns the cards (a lazy iterator, layer-major) and the
    run's figures. `source` defaults to the model's own activations."""
    if not texts:
        raise ValueError("the catalogue needs at least one corpus text")
    tc = tc.eval()
    source = source or ModelInputs(model, tokenizer, tc, settings.max_seq_len)
    start = time.perf_counter()
    resumed = _resumed_from(checkpoint, texts, tc, settings)
    stats = scan_corpus(source, tc, texts, settings, checkpoint, progress)
    slots = choose_slots(stats, settings, tc.n_features)
    context_tokens = read_contexts(source, tc, texts, slots, settings, progress)
    effects = logit_effects(
        model, tc, settings.n_logits, tokenizer.all_special_ids, settings.logit_chunk
    )
    ids = torch.cat([effects.top_ids.flatten(), effects.bottom_ids.flatten()]).tolist()
    names = token_names(tokenizer, ids)
    result = CatalogueResult(n_tokens=stats.n_tokens, n_texts=len(texts), resumed_from=resumed)
    result.seconds = time.perf_counter() - start
    cards = iter_cards(tc, stats, slots, context_tokens, effects, names, settings, label)
    return cards, result


def _resumed_from(
    checkpoint: Path | None, texts: Sequence[str], tc: Transcoder, settings: CatalogueSettings
) -> int:
    if checkpoint is None or not checkpoint.is_file():
        return 0
    stats = _load_checkpoint(checkpoint, corpus_fingerprint(texts, tc, settings), tc)
    return stats.next_text if stats else 0


def build_catalogue_dir(
    model: nn.Module,
    tokenizer,
    tc: Transcoder,
    texts: Sequence[str],
    out: Path,
    settings: CatalogueSettings = CatalogueSettings(),
    *,
    label: Callable[[FeatureCard], str] | None = None,
    progress: Callable[[Progress], None] | None = None,
    source: InputSource | None = None,
    describe: dict[str, object] | None = None,
) -> CatalogueResult:
    """The catalogue in `out/catalogue.jsonl` (with `catalogue.meta.json`), resumable: a killed
    run continues from the checkpoint in `out` (removed when the catalogue is complete)."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT_FILE
    cards, result = feature_catalogue(
        model, tokenizer, tc, texts, settings,
        label=label, checkpoint=checkpoint, progress=progress, source=source,
    )  # fmt: skip
    save_catalogue(cards, out / CATALOGUE_LINES_FILE)
    result.seconds = time.perf_counter() - start
    meta = {
        "settings": asdict(settings),
        "transcoder": tc.config.to_dict(),
        "n_texts": result.n_texts,
        "n_tokens": result.n_tokens,
        "corpus_fingerprint": corpus_fingerprint(texts, tc, settings),
        **(describe or {}),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    checkpoint.unlink(missing_ok=True)
    return result
