"""Writes a transcoder's feature catalogue onto the `:Feature` nodes of docs/schema.md.

Rows are `circuitmap.catalogue.FeatureCard`s (any dataclass with those fields will do). The
`:Model` and `:Transcoder` nodes get their descriptive properties; every feature is MERGEd by uid,
so the catalogue can be written before or after graphs that use it, and writing it again only
refreshes it. A label someone edited (different from the last automatic label) is kept; the
label is mirrored onto the feature's instances in graphs, as `queries.labels` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, is_dataclass
from typing import TYPE_CHECKING

from db.connection import Neo4jHandle
from ingest.payload import feature_uid

if TYPE_CHECKING:  # only for the annotation: importing the pipeline loads torch
    from circuitmap.pipeline import GraphBuilder

MERGE_MODEL = """
MERGE (m:Model {uid: $model.uid})
SET m.name = coalesce(m.name, $model.uid), m += $model
"""
MERGE_TRANSCODER = """
MERGE (t:Transcoder {uid: $transcoder.uid})
SET t.name = coalesce(t.name, $transcoder.uid), t += $transcoder
"""
MERGE_CARDS = """
UNWIND $rows AS r
MERGE (c:Feature {uid: r.uid})
  ON CREATE SET c.transcoder_uid = $transcoder, c.layer = r.layer, c.index = r.index
SET c.label_source = CASE WHEN c.label IS NULL OR c.label = c.auto_label
                          THEN coalesce(r.label_source, 'auto') ELSE c.label_source END,
    c.label = CASE WHEN c.label IS NULL OR c.label = c.auto_label THEN r.label ELSE c.label END,
    c.auto_label = r.label,
    c.density = r.density,
    c.max_activation = r.max_activation,
    c.top_logits = r.top_logits,
    c.top_logit_effects = r.top_logit_effects,
    c.bottom_logits = r.bottom_logits,
    c.bottom_logit_effects = r.bottom_logit_effects,
    c.top_contexts = r.top_contexts,
    c.quantiles = r.quantiles,
    c.active_texts = r.active_texts
WITH c
CALL (c) { MATCH (n:Node {feature_uid: c.uid}) SET n.label = c.label }
RETURN count(c) AS n
"""


@dataclass
class TranscoderInfo:
    """The `:Transcoder` and `:Model` catalogue properties of docs/schema.md."""

    uid: str
    model_uid: str
    kind: str
    n_layers: int
    n_features: int
    d_model: int
    model_family: str = ""
    vocab_size: int | None = None


def transcoder_info(builder: GraphBuilder) -> TranscoderInfo:
    """The catalogue identity of the model and transcoder a builder computes graphs with."""
    tc = builder.rm.transcoder
    return TranscoderInfo(
        uid=builder.transcoder_name, model_uid=builder.model_name, kind=tc.config.kind,
        n_layers=tc.n_layers, n_features=tc.n_features, d_model=tc.d_model,
        model_family=builder.rm.adapter.family, vocab_size=len(builder.tokenizer),
    )  # fmt: skip


def write_catalogue(
    handle: Neo4jHandle, info: TranscoderInfo, cards: Iterable[object], batch: int = 1000
) -> int:
    """Write the model, the transcoder and every card; returns the number of features written."""
    model = {"uid": info.model_uid, "n_layers": info.n_layers, "d_model": info.d_model}
    model.update({"family": info.model_family} if info.model_family else {})
    model.update({"vocab_size": info.vocab_size} if info.vocab_size else {})
    transcoder = {
        "uid": info.uid,
        "model_uid": info.model_uid,
        "kind": info.kind,
        "n_layers": info.n_layers,
        "n_features": info.n_features,
    }
    rows = sorted((_row(info.uid, card) for card in cards), key=lambda r: r["uid"])
    written = 0
    with handle.session() as session:
        session.execute_write(lambda tx: tx.run(MERGE_MODEL, model=model).consume())
        session.execute_write(lambda tx: tx.run(MERGE_TRANSCODER, transcoder=transcoder).consume())
        for lo in range(0, len(rows), batch):
            part = rows[lo : lo + batch]
            written += session.execute_write(
                lambda tx, part=part: tx.run(MERGE_CARDS, rows=part, transcoder=info.uid).single(
                    strict=True
                )["n"]
            )
    return written


def _row(transcoder: str, card: object) -> dict[str, object]:
    if not is_dataclass(card) or isinstance(card, type):
        raise TypeError(f"a catalogue row must be a dataclass instance, got {type(card).__name__}")
    row = asdict(card)
    row["uid"] = feature_uid(transcoder, row["layer"], row["index"])
    row["top_contexts"] = json.dumps(row.get("top_contexts") or [], separators=(",", ":"))
    row["quantiles"] = json.dumps(row.get("quantiles") or [], separators=(",", ":"))
    return row
