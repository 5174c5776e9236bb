"""The feature catalogue of a transcoder over a corpus: what each feature reads and writes.

For every feature: its top activating contexts (whole corpus sentences, with the feature's
activation on every token), its activation density (share of the corpus tokens where it fires),
its mean and largest activation, its top and bottom logit effects (its total decoder write through
the final norm's weight and the unembedding, demeaned over the vocabulary, special tokens left
out) and an automatic label. The rows are plain dataclasses (`FeatureCard`), the shape
`ingest.catalog.write_catalogue` stores on the `:Feature` nodes of docs/schema.md.

Contexts are found in two passes over the corpus in bounded memory: the first keeps, per feature,
the k sentences with the largest activation (a running top-k); the second re-runs only those
sentences to read their per-token activations.

The demo's catalogue is a cached stage inside the CLT's directory (`catalogue-<hash>/`), so it
lives with the transcoder it describes and is rebuilt when the CLT or the settings change.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from circuitmap.demo.artifacts import cached_stage, is_built, stage_dir, torch_threads
from circuitmap.models import ModelAdapter
from circuitmap.records import GraphRecord
from circuitmap.transcoders import Transcoder, load_transcoder
from circuitmap.transcoders.activations import ActivationHarvester

CATALOGUE_STAGE_VERSION = 2
CATALOGUE_FILE = "catalogue.json"


@dataclass
class Context:
    """One top activating context: its tokens and the feature's activation on each."""

    tokens: list[str]
    activations: list[float]


@dataclass
class FeatureCard:
    """One feature's catalogue entry (a row of `ingest.catalog.write_catalogue`)."""

    layer: int
    index: int
    label: str
    density: float  # share of corpus tokens (BOS excluded) where the feature is active
    active_texts: int  # corpus texts in which it is active at least once
    mean_activation: float  # over the tokens where it is active
    max_activation: float
    top_logits: list[str]
    top_logit_effects: list[float]
    bottom_logits: list[str]
    bottom_logit_effects: list[float]
    top_contexts: list[Context] = field(default_factory=list)

    @property
    def feature_id(self) -> str:
        return f"{self.layer}/{self.index}"

    def peak_tokens(self) -> list[str]:
        """The token where the feature peaks in each top context."""
        return [c.tokens[max(range(len(c.tokens)), key=c.activations.__getitem__)]
                for c in self.top_contexts if c.tokens]  # fmt: skip


@dataclass(frozen=True)
class CatalogueConfig:
    n_contexts: int = 10
    n_logits: int = 10
    batch_texts: int = 256


# ---- computing ----------------------------------------------------------------------------------


@torch.no_grad()
def feature_catalogue(
    model: nn.Module,
    tokenizer,
    transcoder: Transcoder,
    texts: Sequence[str],
    config: CatalogueConfig = CatalogueConfig(),
    label: Callable[[FeatureCard], str] | None = None,
) -> list[FeatureCard]:
    """Catalogue entries of every feature (layer-major), from the model's activations on
    `texts`. `label` names a card (default: `auto_label`)."""
    if not texts:
        raise ValueError("the catalogue needs at least one corpus text")
    tc = transcoder.eval()
    harvester = ActivationHarvester(
        model, tokenizer, tc.config.input_site, tc.config.output_site,
        batch_size=config.batch_texts,
    )  # fmt: skip
    n_feat = tc.n_layers * tc.n_features
    k = config.n_contexts
    top_val = torch.zeros(k, n_feat)
    top_text = torch.full((k, n_feat), -1, dtype=torch.long)
    n_active = torch.zeros(n_feat, dtype=torch.float64)
    n_texts = torch.zeros(n_feat, dtype=torch.long)
    total = torch.zeros(n_feat, dtype=torch.float64)
    n_tokens = 0
    for start in range(0, len(texts), config.batch_texts):
        chunk = texts[start : start + config.batch_texts]
        acts, lengths = _activations(harvester, tc, chunk)
        segment = torch.repeat_interleave(torch.arange(len(chunk)), lengths)[:, None]
        per_text = torch.zeros(len(chunk), n_feat).scatter_reduce_(
            0, segment.expand(-1, n_feat), acts, "amax"
        )
        n_active += (acts > 0).sum(0)
        n_texts += (per_text > 0).sum(0)
        total += acts.sum(0, dtype=torch.float64)
        n_tokens += acts.shape[0]
        ids = torch.arange(start, start + len(chunk))[:, None].expand(-1, n_feat)
        values, rank = torch.cat([top_val, per_text]).topk(k, dim=0)
        top_text = torch.cat([top_text, ids]).gather(0, rank)
        top_val = values
    top_text[top_val <= 0] = -1
    contexts = _context_activations(harvester, tc, texts, top_text, config.batch_texts)
    effects = logit_effects(model, tc)
    names = _token_names(tokenizer, effects.shape[1])
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    effects[:, special] = float("nan")
    cards = []
    for flat in range(n_feat):
        layer, index = divmod(flat, tc.n_features)
        row = effects[flat]
        valid = ~row.isnan()
        top = row.masked_fill(~valid, -float("inf")).topk(config.n_logits)
        bottom = (-row).masked_fill(~valid, -float("inf")).topk(config.n_logits)
        active = float(n_active[flat])
        card = FeatureCard(
            layer=layer,
            index=index,
            label="",
            density=active / max(n_tokens, 1),
            active_texts=int(n_texts[flat]),
            mean_activation=float(total[flat]) / active if active else 0.0,
            max_activation=float(top_val[0, flat]),
            top_logits=[names[i] for i in top.indices.tolist()],
            top_logit_effects=[round(v, 5) for v in top.values.tolist()],
            bottom_logits=[names[i] for i in bottom.indices.tolist()],
            bottom_logit_effects=[round(-v, 5) for v in bottom.values.tolist()],
            top_contexts=contexts.get(flat, []),
        )
        card.label = (label or auto_label)(card)
        cards.append(card)
    return cards


def _activations(
    harvester: ActivationHarvester, tc: Transcoder, texts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature activations [n_tokens, L * F] of the texts' tokens (BOS dropped), and the number
    of tokens of each text."""
    x, _ = harvester.harvest(texts)
    acts = tc.encode(x.transpose(0, 1).to(tc.W_enc.dtype))  # [L, n, F]
    lengths = torch.tensor([harvester.n_tokens(t) for t in texts])
    return acts.transpose(0, 1).reshape(x.shape[0], -1).float(), lengths


def _context_activations(
    harvester: ActivationHarvester,
    tc: Transcoder,
    texts: Sequence[str],
    top_text: torch.Tensor,
    batch: int,
) -> dict[int, list[Context]]:
    """Per feature (flat index), its top contexts with per-token activations, best first."""
    rank, feature = (top_text >= 0).nonzero(as_tuple=True)
    text = top_text[rank, feature]
    needed = text.unique()
    found: dict[tuple[int, int], list[float]] = {}
    token_names: dict[int, list[str]] = {}
    for start in range(0, len(needed), batch):
        ids = needed[start : start + batch]
        chunk = [texts[i] for i in ids.tolist()]
        acts, lengths = _activations(harvester, tc, chunk)
        offsets = lengths.cumsum(0) - lengths
        local = torch.searchsorted(ids, text)
        pick = (local < len(ids)) & (ids[local.clamp(max=len(ids) - 1)] == text)
        width = int(lengths.max())
        rows = offsets[local[pick]][:, None] + torch.arange(width)
        valid = torch.arange(width) < lengths[local[pick]][:, None]
        values = acts[rows.clamp(max=acts.shape[0] - 1), feature[pick][:, None]] * valid
        for t, f, n, v in zip(
            text[pick].tolist(),
            feature[pick].tolist(),
            lengths[local[pick]].tolist(),
            values.tolist(),
            strict=True,
        ):
            found[(t, f)] = [round(a, 4) + 0.0 for a in v[:n]]  # no -0.0
        for i, t in zip(ids.tolist(), chunk, strict=True):
            token_names[i] = _tokens(harvester, t)
    contexts: dict[int, list[Context]] = {}
    for t, f in zip(text.tolist(), feature.tolist(), strict=True):  # rank order within a feature
        contexts.setdefault(f, []).append(Context(token_names[t], found[(t, f)]))
    return contexts


def _tokens(harvester: ActivationHarvester, text: str) -> list[str]:
    ids = harvester.token_ids(text)
    ids = ids[1:] if ids[0] in harvester.tokenizer.all_special_ids else ids
    return harvester.tokenizer.convert_ids_to_tokens(ids)


def _token_names(tokenizer, vocab: int) -> list[str]:
    return tokenizer.convert_ids_to_tokens(list(range(vocab)))


@torch.no_grad()
def logit_effects(model: nn.Module, tc: Transcoder) -> torch.Tensor:
    """[L * F, vocab] each feature's direct effect on the logits per unit activation: its decoder
    vectors summed over the layers it writes to, times the final norm's weight, through the
    unembedding, demeaned over the vocabulary (the frozen-scale direct path, up to the scale)."""
    adapter = ModelAdapter(model)
    gain = adapter.norm_spec(adapter.final_norm).weight.float()
    w_u = adapter.W_U.float()
    rows = [(w.float().sum(1) * gain) @ w_u for w in tc.W_dec]
    effects = torch.cat(rows)
    return effects - effects.mean(1, keepdim=True)


def auto_label(card: FeatureCard) -> str:
    """`"dallas"/"plano" → "texas"`: the tokens it peaks on most often in its top contexts,
    then its top logit."""
    if not card.top_contexts:
        return "inactive on the corpus"
    common = [t for t, _ in Counter(card.peak_tokens()).most_common(3)]
    reads = "/".join(f'"{t}"' for t in common)
    return f'{reads} → "{card.top_logits[0]}"' if card.top_logits else reads


# ---- storing ------------------------------------------------------------------------------------


def save_catalogue(cards: Sequence[FeatureCard], path: Path) -> None:
    path.write_text(json.dumps([asdict(c) for c in cards], separators=(",", ":")) + "\n")


def load_catalogue(path: Path) -> list[FeatureCard]:
    """Cards from a catalogue file (or a catalogue stage directory)."""
    path = path / CATALOGUE_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no feature catalogue at {path}")
    rows = json.loads(path.read_text())
    return [
        FeatureCard(**{**r, "top_contexts": [Context(**c) for c in r["top_contexts"]]})
        for r in rows
    ]


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
        with torch_threads(threads):
            cards = feature_catalogue(model, tokenizer, tc, corpus_texts, config, label)
        save_catalogue(cards, out / CATALOGUE_FILE)

    inputs = _inputs(config, corpus_texts, label_version)
    return cached_stage(
        "catalogue", CATALOGUE_STAGE_VERSION, inputs, build, root=clt_dir, rebuild=rebuild
    )


def label_features(record: GraphRecord, cards: Sequence[FeatureCard]) -> GraphRecord:
    """`record` with each feature node labelled from its catalogue card (in place; returned)."""
    labels = {(c.layer, c.index): c.label for c in cards}
    for node in record.nodes:
        if node.kind == "feature":
            node.label = labels.get((node.layer, node.feature_index), "")
    return record
