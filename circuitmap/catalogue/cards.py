"""A feature's catalogue entry (its feature page) and the catalogue file.

`FeatureCard` is what the builder produces and `ingest.catalog.write_catalogue` stores on the
`:Feature` nodes of docs/schema.md. The file is a JSON list (`catalogue.json`, the demo's) or one
card per line (`catalogue.jsonl`, what the general builder streams out for big transcoders).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from circuitmap.records import GraphRecord

CATALOGUE_FILE = "catalogue.json"
CATALOGUE_LINES_FILE = "catalogue.jsonl"
#: `FeatureCard.label_source` of a label the builder derived itself.
AUTOMATIC = "auto"


@dataclass
class Context:
    """One activating context: its tokens and the feature's activation on each."""

    tokens: list[str]
    activations: list[float]


@dataclass
class QuantileBin:
    """Contexts whose peak activation lies in (lower, upper], sampled uniformly from the corpus
    (Neuronpedia's interval bins: what the feature does below its very top)."""

    lower: float
    upper: float
    contexts: list[Context] = field(default_factory=list)


@dataclass
class FeatureCard:
    """One feature's catalogue entry."""

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
    quantiles: list[QuantileBin] = field(default_factory=list)
    label_source: str = AUTOMATIC

    @property
    def feature_id(self) -> str:
        return f"{self.layer}/{self.index}"

    def peak_tokens(self) -> list[str]:
        """The token where the feature peaks in each top context."""
        return [c.tokens[max(range(len(c.tokens)), key=c.activations.__getitem__)]
                for c in self.top_contexts if c.tokens]  # fmt: skip

    @classmethod
    def from_dict(cls, row: dict) -> FeatureCard:
        contexts = [Context(**c) for c in row.get("top_contexts", [])]
        bins = [
            QuantileBin(b["lower"], b["upper"], [Context(**c) for c in b["contexts"]])
            for b in row.get("quantiles", [])
        ]
        return cls(**{**row, "top_contexts": contexts, "quantiles": bins})


def auto_label(card: FeatureCard) -> str:
    """`"dallas"/"plano" → "texas"`: the tokens it peaks on most often in its top contexts,
    then its top logit (subword markers such as SentencePiece's "▁" and GPT-2's "Ġ" dropped)."""
    if not card.top_contexts:
        return "inactive on the corpus"
    common = dict.fromkeys(_shown(t) for t, _ in Counter(card.peak_tokens()).most_common(3))
    reads = "/".join(f'"{t}"' for t in common)
    return f'{reads} → "{_shown(card.top_logits[0])}"' if card.top_logits else reads


def _shown(token: str) -> str:
    text = token.lstrip("▁Ġ").strip()
    return text if text else repr(token)


def save_catalogue(cards: Iterable[FeatureCard], path: Path) -> Path:
    """Write cards as a JSON list (`.json`) or one per line (`.jsonl`, streamed), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        if path.suffix == ".jsonl":
            for card in cards:
                out.write(json.dumps(asdict(card), separators=(",", ":")) + "\n")
        else:
            out.write(json.dumps([asdict(c) for c in cards], separators=(",", ":")) + "\n")
    tmp.replace(path)
    return path


def catalogue_file(path: Path) -> Path:
    """The catalogue file at `path`, or inside the directory `path`."""
    if path.is_dir():
        for name in (CATALOGUE_LINES_FILE, CATALOGUE_FILE):
            if (path / name).is_file():
                return path / name
        path = path / CATALOGUE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no feature catalogue at {path}")
    return path


def load_catalogue(path: Path) -> list[FeatureCard]:
    """Cards from a catalogue file or a directory holding one."""
    path = catalogue_file(path)
    with path.open(encoding="utf-8") as f:
        if path.suffix == ".jsonl":
            return [FeatureCard.from_dict(json.loads(line)) for line in f if line.strip()]
        return [FeatureCard.from_dict(row) for row in json.load(f)]


def label_features(record: GraphRecord, cards: Sequence[FeatureCard]) -> GraphRecord:
    """`record` with each feature node labelled from its catalogue card (in place; returned)."""
    labels = {(c.layer, c.index): c.label for c in cards}
    for node in record.nodes:
        if node.kind == "feature":
            node.label = labels.get((node.layer, node.feature_index), "")
    return record
