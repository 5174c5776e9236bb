"""Demo graphs in Neo4j, for the query and dashboard tests: a fixed sample of the demo prompts
(`demo_sample` in conftest computes their graphs once a session), written as `circuitmap demo`
writes them (catalogue first, then each graph through ingest's writer)."""

from __future__ import annotations

from dataclasses import dataclass

from neo4j import Driver

from circuitmap.demo.catalogue import FeatureCard, label_features
from circuitmap.demo.stages import DemoBuild
from circuitmap.pipeline import GraphBuilder
from circuitmap.records import GraphRecord
from db.connection import Neo4jHandle, database_name
from db.schema import ensure_schema
from ingest.aggregate import Aggregator
from ingest.catalog import TranscoderInfo, transcoder_info, write_catalogue
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter

# Prompts per task in the sample (the first ones by id: the sample is the same every run).
SAMPLE_SIZES = {"two_hop": 8, "addition": 3, "entity": 3}


@dataclass
class DemoSample:
    prompts: list[PromptRecord]
    records: list[GraphRecord]  # one per prompt, feature nodes labelled from the catalogue
    info: TranscoderInfo
    cards: list[FeatureCard]

    def of_task(self, task: str) -> list[tuple[PromptRecord, GraphRecord]]:
        pairs = zip(self.prompts, self.records, strict=True)
        return [(p, r) for p, r in pairs if p.tags[0] == task]


def compute_sample(
    demo: DemoBuild, builder: GraphBuilder, sizes: dict[str, int] = SAMPLE_SIZES
) -> DemoSample:
    rows = sorted(demo.prompts(), key=lambda row: row["id"])
    chosen = [
        row for task, n in sizes.items() for row in [r for r in rows if r["tags"][0] == task][:n]
    ]
    cards = demo.cards()
    prompts = [
        PromptRecord(
            uid=row["id"],
            text=row["text"],
            tags=row["tags"],
            answer=row.get("answer"),
            metadata=row.get("metadata") or {},
            corpus="demo",
        )  # fmt: skip
        for row in chosen
    ]
    records = [label_features(builder.build(p.text), cards) for p in prompts]
    return DemoSample(prompts, records, transcoder_info(builder), cards)


def reported_two_hop_paths(demo: DemoBuild) -> set[str]:
    """Ids of the two-hop prompts whose graph the build reports with the city -> state -> capital
    path (`demo.checks()`: state features of the prompt's state on an excitatory path). The demo
    model is trained on the CPU and its weights, so its graphs, differ between machines."""
    return {p["prompt_id"] for p in demo.checks()["two_hop_prompts"] if p["state_features"]}


def _of_task(rows: list[dict], task: str) -> list[dict]:
    return [row for row in rows if row["tags"][0] == task]


def write_sample(
    driver: Driver, sample: DemoSample, tasks: tuple[str, ...] | None = None
) -> list[str]:
    """The catalogue and the sample's graphs (of `tasks`, default all), folded into the corpus
    aggregates as an ingest run leaves them; returns the graph uids."""
    handle = Neo4jHandle(driver, database_name())
    ensure_schema(handle)
    write_catalogue(handle, sample.info, sample.cards)
    writer = GraphWriter(handle)
    uids = [
        writer.write_graph(prompt, record).graph_uid
        for prompt, record in zip(sample.prompts, sample.records, strict=True)
        if tasks is None or prompt.tags[0] in tasks
    ]
    Aggregator(handle).fold_all()
    return uids
