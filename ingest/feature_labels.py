"""Feature labels brought in from elsewhere, and labels carried onto graph nodes.

Label files (`read_label_file`): a CSV with a header naming `layer`, `index` (or `feature`) and
`label` (or `description`); a JSON list of such objects (or an object holding the list under
`labels` or `explanations`); JSON lines, gzipped or not. Neuronpedia's explanation exports have
that shape: its public dataset exports (`v1/<model>/<source>/explanations/batch-<n>.jsonl.gz`)
and the older `/api/explanation/export` answer (a JSON list) give one object per explanation with
`modelId`, `layer` (the source id, such as `"20-gemmascope-transcoder-16k"`, whose leading number
is the layer), `index` (a string) and `description`, besides `typeName`, `explanationModelName`,
scores and embeddings that are ignored here. A feature with several explanations keeps the first.

Precedence on a `:Feature` (docs/schema.md): a label someone edited is kept over imported and
automatic ones; an imported label is kept over automatic ones (a rebuilt catalogue does not
overwrite it) and replaced by a later import. `label_source` says which one a feature shows
("auto", "imported"), `imported_label` keeps the last imported text. Every label that changes is
copied onto the feature's instances in graphs (`Node.label`), and `copy_labels_to_graphs` does the
same for graphs written after the labels (imported graphs carry Neuronpedia's empty `clerp`s).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from db.connection import Neo4jHandle
from ingest.catalog import TranscoderInfo, write_catalogue
from ingest.payload import feature_uid

IMPORTED = "imported"
MAX_LABEL_LENGTH = 500
LABEL_KEYS = ("label", "description", "explanation")
INDEX_KEYS = ("index", "feature", "feature_index")
_LAYER = re.compile(r"^\s*(\d+)(?:\D.*)?$")

IMPORT_LABELS = """
UNWIND $rows AS r
MERGE (c:Feature {uid: r.uid})
  ON CREATE SET c.transcoder_uid = $transcoder, c.layer = r.layer, c.index = r.index
WITH c, r, (c.label IS NULL OR c.label = '' OR c.label = coalesce(c.auto_label, '')
            OR c.label = coalesce(c.imported_label, '') OR $force) AS replace
SET c.imported_label = r.label,
    c.label_source = CASE WHEN replace THEN $source ELSE coalesce(c.label_source, 'edited') END,
    c.label = CASE WHEN replace THEN r.label ELSE c.label END
WITH c, replace
CALL (c, replace) {
  WITH c WHERE replace
  MATCH (n:Node {feature_uid: c.uid}) SET n.label = c.label
  RETURN count(n) AS nodes
}
RETURN count(c) AS features, sum(CASE WHEN replace THEN 1 ELSE 0 END) AS replaced,
  sum(nodes) AS nodes
"""
COPY_LABELS_TO_GRAPHS = """
UNWIND $graphs AS uid
MATCH (:Graph {uid: uid})-[:HAS_NODE]->(n:FeatureNode)
MATCH (c:Feature {uid: n.feature_uid})
WHERE c.label IS NOT NULL AND c.label <> '' AND coalesce(n.label, '') <> c.label
SET n.label = c.label
RETURN count(n) AS nodes
"""


KNOWN_TRANSCODERS = """
MATCH (t:Transcoder) RETURN t.uid AS uid
UNION
MATCH (g:Graph) RETURN DISTINCT g.transcoder_uid AS uid
"""


class LabelFileError(ValueError):
    """A label file that cannot be read at all (its lines' problems are `LabelFile.errors`)."""


@dataclass(frozen=True)
class FeatureLabel:
    layer: int
    index: int
    label: str


@dataclass
class LabelFile:
    labels: list[FeatureLabel] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line N: problem", rows skipped
    duplicates: int = 0  # further explanations of a feature already read (the first is kept)
    model_ids: set[str] = field(default_factory=set)  # Neuronpedia `modelId`s seen


@dataclass
class LabelSummary:
    features: int = 0  # features the file names
    replaced: int = 0  # features now showing the imported label
    kept: int = 0  # features whose edited label was kept
    graph_nodes: int = 0  # graph nodes relabelled


def read_label_file(path: str | Path) -> LabelFile:
    """Labels from a CSV, JSON or JSON-lines file (`.gz` too); bad rows are reported, not read."""
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"label file {path} not found")
    name = path.name.lower().removesuffix(".gz")
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise LabelFileError(f"{path}: cannot read ({error})") from error
    if name.endswith(".csv"):
        rows = _csv_rows(text)
    elif name.endswith((".jsonl", ".ndjson")):
        rows = _json_lines(text)
    elif name.endswith(".json"):
        rows = _json_rows(text, path)
    else:
        raise LabelFileError(f"{path}: expected a .csv, .json or .jsonl file (optionally .gz)")
    return _labels(rows)


def _csv_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise LabelFileError("the CSV file has no header (layer, index, label)")
    for row in reader:
        yield reader.line_num, row


def _json_lines(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"bad JSON ({error.msg})"


def _json_rows(text: str, path: Path) -> Iterator[tuple[int, dict | str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LabelFileError(f"{path}: bad JSON at line {error.lineno} ({error.msg})") from error
    if isinstance(data, dict):
        data = next((data[k] for k in ("labels", "explanations") if k in data), None)
    if not isinstance(data, list):
        raise LabelFileError(f"{path}: expected a list of labels (or one under 'labels')")
    yield from enumerate(data, 1)


def _labels(rows: Iterable[tuple[int, dict | str]]) -> LabelFile:
    out = LabelFile()
    seen: set[tuple[int, int]] = set()
    for number, row in rows:
        try:
            label = _label(row)
        except ValueError as error:
            out.errors.append(f"line {number}: {error}")
            continue
        if isinstance(row, dict) and row.get("modelId"):
            out.model_ids.add(str(row["modelId"]))
        key = (label.layer, label.index)
        if key in seen:
            out.duplicates += 1
            continue
        seen.add(key)
        out.labels.append(label)
    return out


def _label(row: dict | str) -> FeatureLabel:
    if isinstance(row, str):
        raise ValueError(row)
    if not isinstance(row, dict):
        raise ValueError("expected an object with layer, index and label")
    layer_value = row.get("layer")
    index_value = next((row[k] for k in INDEX_KEYS if row.get(k) not in (None, "")), None)
    text = next((row[k] for k in LABEL_KEYS if row.get(k) not in (None, "")), None)
    if layer_value is None or index_value is None or text is None:
        raise ValueError("needs a layer, an index and a label (or description)")
    match = _LAYER.match(str(layer_value))
    if not match:
        raise ValueError(f"layer {layer_value!r} does not start with a layer number")
    try:
        index = int(str(index_value).strip())
    except ValueError:
        raise ValueError(f"index {index_value!r} is not an integer") from None
    label = " ".join(str(text).split())
    if index < 0 or not label:
        raise ValueError("negative index or empty label")
    if len(label) > MAX_LABEL_LENGTH:
        label = label[: MAX_LABEL_LENGTH - 1] + "…"
    return FeatureLabel(int(match.group(1)), index, label)


def write_labels(
    handle: Neo4jHandle,
    transcoder: str,
    labels: Iterable[FeatureLabel],
    *,
    force: bool = False,
    batch: int = 2000,
) -> LabelSummary:
    """Store imported labels on the transcoder's `:Feature`s (created if missing) and on their
    graph nodes. Edited labels are kept unless `force`."""
    rows = [
        {"uid": feature_uid(transcoder, x.layer, x.index), "layer": x.layer, "index": x.index,
         "label": x.label}
        for x in labels
    ]  # fmt: skip
    summary = LabelSummary()
    params = {"transcoder": transcoder, "force": force, "source": IMPORTED}
    for lo in range(0, len(rows), batch):
        record = handle.write(IMPORT_LABELS, {**params, "rows": rows[lo : lo + batch]})[0]
        summary.features += record["features"]
        summary.replaced += record["replaced"]
        summary.graph_nodes += record["nodes"]
    summary.kept = summary.features - summary.replaced
    return summary


def copy_labels_to_graphs(handle: Neo4jHandle, graph_uids: Iterable[str]) -> int:
    """Give the feature nodes of these graphs their catalog feature's label (where it has one);
    returns the nodes changed."""
    uids = list(graph_uids)
    if not uids:
        return 0
    return int(handle.write(COPY_LABELS_TO_GRAPHS, {"graphs": uids})[0]["nodes"])


def known_transcoders(handle: Neo4jHandle) -> list[str]:
    """Transcoder uids the database knows (catalogued or used by a graph), sorted."""
    return sorted({r["uid"] for r in handle.read(KNOWN_TRANSCODERS) if r["uid"]})


def store_catalogue(handle: Neo4jHandle, info: TranscoderInfo, cards: Iterable[object]) -> int:
    """Write a built catalogue (`circuitmap.catalogue.FeatureCard`s) onto `:Feature` nodes and
    their graph nodes (`ingest.catalog.write_catalogue`); returns the features written."""
    return write_catalogue(handle, info, cards)
