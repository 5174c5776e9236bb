"""The demo graphs for the dashboard tests (tests/demo_graphs.py writes them, as `circuitmap demo`
does), one failed prompt on top (the demo has none), and AppTest helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from neo4j import Driver
from streamlit.testing.v1 import AppTest

from circuitmap.records import GraphRecord, NodeRecord
from db.connection import database_name
from ingest.corpus import PromptRecord
from ingest.spec import GraphSpec
from ingest.writer import GraphWriter
from tests.demo_graphs import DemoSample, write_sample
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
        GraphWriter(driver, database_name()).write_failure(failed, spec, FAILURE)
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
