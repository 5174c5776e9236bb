"""Graph JSON files (Neuronpedia / circuit-tracer schema, or ours) -> the same Neo4j schema.

Imported graphs sit beside computed ones (`Graph.source = "imported"`); the prompt uid is the hash
of the file's prompt text and the graph uid adds the file's model, transcoder set and settings, so
importing a file twice writes it once. The imported graphs are folded into the corpus aggregates
at the end, as after an ingest run, and their feature nodes take the labels the catalog already
has for their features (`ingest.feature_labels`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from circuitmap.graph_json import read_graph_json
from ingest.aggregate import Aggregator
from ingest.corpus import PromptRecord
from ingest.feature_labels import copy_labels_to_graphs
from ingest.worker import Reporter
from ingest.writer import GraphWriter


@dataclass
class ImportSummary:
    written: int = 0
    skipped: int = 0  # already in the database
    nodes: int = 0
    edges: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # "path: message", one per unreadable file


def import_files(
    paths: Iterable[str | Path],
    writer: GraphWriter,
    corpus: str = "imported",
    reporter: Reporter | None = None,
) -> ImportSummary:
    """Import each file in its own transaction; unreadable files are reported and skipped."""
    reporter = reporter or Reporter()
    summary = ImportSummary()
    start = time.perf_counter()
    graph_uids: list[str] = []
    for path in paths:
        try:
            graph = read_graph_json(path)
        except (ValueError, KeyError, TypeError) as error:
            summary.errors.append(f"{path}: {error}")
            reporter.advance("error", 0)
            continue
        prompt = PromptRecord.make(graph.prompt, corpus=corpus, metadata={"source_file": str(path)})
        result = writer.write_graph(prompt, graph, source="imported")
        graph_uids.append(result.graph_uid)
        if result.status == "written":
            summary.written += 1
            summary.nodes += result.n_nodes
            summary.edges += result.n_edges
        else:
            summary.skipped += 1
        reporter.advance(result.status, result.n_edges)
    Aggregator(writer.handle).fold_all()
    # Catalog labels (a catalogue, imported label files) replace the files' own, often empty, ones.
    copy_labels_to_graphs(writer.handle, graph_uids)
    summary.seconds = time.perf_counter() - start
    return summary
