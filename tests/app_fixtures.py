"""The demo graphs for the dashboard tests (tests/demo_graphs.py writes them, as `circuitmap demo`
does), one failed prompt on top (the demo has none), and AppTest helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from neo4j import Driver
from streamlit.testing.v1 import AppTest

from circuitmap.demo.stages import DemoBuild
from circuitmap.records import GraphRecord, NodeRecord
from db.connection import Neo4jHandle, database_name
from db.schema import ensure_schema
from ingest.corpus import PromptRecord
from ingest.spec import GraphSpec
from ingest.writer import GraphWriter
from tests.demo_graphs import DemoSample, reported_two_hop_paths, write_sample
from tests.ingest_helpers import wipe_database

APP_MAIN = Path(__file__).resolve().parents[1] / "app" / "main.py"
FAILURE = "prompt has 99 tokens, more than the maximum 64"
FAILED_PROMPT = "the capital of the state containing a city whose name is far too long is"


@dataclass
class DemoCorpus:
    """The demo sample as written: graph uids by prompt uid (e.g. "two_hop:akron")."""

    sample: DemoSample
    graphs: dict[str, str]

    def prompt(self, uid: str) -> PromptRecord:
        return next(p for p in self.sample.prompts if p.uid == uid)

    def record(self, uid: str) -> GraphRecord:
        return self.sample.records[[p.uid for p in self.sample.prompts].index(uid)]

    def features(self, uid: str) -> list[NodeRecord]:
        """The feature nodes of the prompt's graph, most influential first."""
        nodes = [n for n in self.record(uid).nodes if n.kind == "feature"]
        return sorted(nodes, key=lambda n: n.influence)

    def state_features(self, uid: str) -> list[NodeRecord]:
        """The feature nodes the demo catalogue labels with the two-hop prompt's state ("state
        ohio · ..."), most influential first."""
        state = self.prompt(uid).metadata["state"]
        return [n for n in self.features(uid) if n.label.startswith(f"state {state} ·")]

    def with_state_path(self, demo: DemoBuild) -> list[str]:
        """The sample's two-hop prompts whose city -> state -> capital path the build reports and
        whose graph has state-labelled features: tests pick their prompt from these instead of
        naming a city (the graphs differ between machines)."""
        reported = reported_two_hop_paths(demo)
        found = [
            p.uid
            for p, _ in self.sample.of_task("two_hop")
            if p.uid in reported and self.state_features(p.uid)
        ]
        assert found, "the build reports no two-hop path in the sample"
        return found

    def hub(self, uid: str) -> str:
        """The feature node with the most inputs in the prompt's graph."""
        record = self.record(uid)
        targets = [t for t in record.edge_target.tolist() if record.nodes[t].kind == "feature"]
        return record.nodes[max(set(targets), key=lambda t: (targets.count(t), -t))].node_id

    def feature_uid(self, node: NodeRecord, prompt_uid: str) -> str:
        return f"{self.record(prompt_uid).transcoder}/{node.layer}/{node.feature_index}"


def wipe(driver: Driver) -> None:
    wipe_database(driver)
    clear_app_caches()


def clear_app_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def write_demo(driver: Driver, sample: DemoSample, with_failure: bool = True) -> DemoCorpus:
    """The demo sample's catalogue and graphs, and (unless told not to) one failed prompt."""
    uids = write_sample(driver, sample)
    if with_failure:
        first = sample.records[0]
        failed = PromptRecord.make(FAILED_PROMPT, tags=["two_hop"])
        spec = GraphSpec(first.model, first.transcoder, {})
        GraphWriter(Neo4jHandle(driver, database_name())).write_failure(failed, spec, FAILURE)
    clear_app_caches()
    return DemoCorpus(sample, dict(zip([p.uid for p in sample.prompts], uids, strict=True)))


def open_page(page: str, **query: str) -> AppTest:
    """Run the dashboard's entry script, then `page` (e.g. "views/graph.py") with query params."""
    at = AppTest.from_file(str(APP_MAIN), default_timeout=60)
    at.run()
    for key, value in query.items():
        at.query_params[key] = value
    return at.switch_page(page).run()


def texts(at: AppTest) -> str:
    """Every text the page shows (markdown, captions, titles, alerts, metrics, labels), joined."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "warning",
        "error",
        "success",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [t.label for t in at.tabs]
    return "\n".join(parts)


def table(at: AppTest, *columns: str, without: tuple[str, ...] = ()):
    """The first table showing all `columns` and none of `without` (tables without selection have
    no key in AppTest)."""
    for frame in at.dataframe:
        names = set(frame.value.columns)
        if set(columns) <= names and not names & set(without):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


# ---- a small synthetic corpus (no trained demo needed) -----------------------------------------

SMALL_TRANSCODER = "synthetic-clt"
SMALL_MODEL = "synthetic-model"
AKRON_TEXT = "the capital of the state containing akron is"
DALLAS_TEXT = "the capital of the state containing dallas is"
SUM_TEXT = '98 + 91 = "'  # a quote in an axis token
SUM_UID = "addition:98+91"  # a `+` in the graph uid
WRONG_TOP = "179"  # the model's top prediction for 98+91, the expected answer being 189


@dataclass
class SmallCard:
    """A catalogue row (ingest.catalog.write_catalogue) for a synthetic feature."""

    layer: int
    index: int
    label: str
    density: float
    max_activation: float
    top_logits: list[str]
    top_logit_effects: list[float]
    bottom_logits: list[str]
    bottom_logit_effects: list[float]
    top_contexts: list[dict]


@dataclass
class SmallCorpus:
    graphs: dict[str, str]  # graph uid by prompt uid
    records: dict[str, GraphRecord]  # by prompt uid

    def feature_uid(self, node: NodeRecord) -> str:
        return f"{SMALL_TRANSCODER}/{node.layer}/{node.feature_index}"


def small_records() -> dict[str, tuple[PromptRecord, GraphRecord]]:
    """Three synthetic graphs (seeded, ~60 features each), with prompts, tags and answers."""
    from circuitmap.synthetic import SyntheticConfig, synthetic_graph

    config = SyntheticConfig(n_features=60, n_edges=900, catalog_size=64, seed=3)
    specs = [
        ("two_hop:akron", AKRON_TEXT, ["two_hop"], "columbus", "columbus"),
        ("two_hop:dallas", DALLAS_TEXT, ["two_hop"], "austin", "austin"),
        (SUM_UID, SUM_TEXT, ["addition"], "189", WRONG_TOP),
    ]
    out = {}
    for uid, text, tags, answer, top in specs:
        record = synthetic_graph(
            text, config, answer=top, model=SMALL_MODEL, transcoder=SMALL_TRANSCODER
        )
        out[uid] = (PromptRecord(uid=uid, text=text, tags=tags, answer=answer), record)
    return out


def _cards(records: list[GraphRecord]) -> list[SmallCard]:
    keys = sorted(
        {(n.layer, n.feature_index) for r in records for n in r.nodes if n.kind == "feature"}
    )
    return [
        SmallCard(
            layer,
            index,
            f'feature {layer}/{index} "quoted"',
            0.01,
            5.0,
            ["austin", "columbus"],
            [0.9, 0.4],
            ["the"],
            [-0.3],
            [{"tokens": ["the", "state", "of", "ohio"], "activations": [0.0, 1.0, 0.2, 4.0]}],
        )
        for layer, index in keys
    ]


def write_small_corpus(driver: Driver) -> SmallCorpus:
    """The catalogue of the three graphs' features, then the graphs, folded into the aggregates."""
    from ingest.aggregate import Aggregator
    from ingest.catalog import TranscoderInfo, write_catalogue

    records = small_records()
    handle = Neo4jHandle(driver, database_name())
    ensure_schema(handle)
    info = TranscoderInfo(SMALL_TRANSCODER, SMALL_MODEL, "clt", 4, 64, 16)
    write_catalogue(handle, info, _cards([r for _, r in records.values()]))
    writer = GraphWriter(handle)
    graphs = {uid: writer.write_graph(p, r).graph_uid for uid, (p, r) in records.items()}
    Aggregator(handle).fold_all()
    clear_app_caches()
    return SmallCorpus(graphs, {uid: r for uid, (_, r) in records.items()})


def component_data(at: AppTest, key: str = "gv_chart") -> dict:
    """The data the page sent to the client-side graph view (graph, cards, view state)."""
    found = [c for c in at.get("bidi_component") if getattr(c, "key", None) == key]
    if not found:
        raise AssertionError(f"no component with key {key!r} on the page")
    return json.loads(found[0].proto.json)
