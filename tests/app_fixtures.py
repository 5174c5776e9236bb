"""A small corpus for the dashboard tests, written by ingest's writer, and AppTest helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from neo4j import Driver
from streamlit.testing.v1 import AppTest

from circuitmap.demo.catalogue import Context, FeatureCard
from circuitmap.synthetic import SyntheticConfig, synthetic_graph, synthetic_prompts
from db.connection import database_name
from db.schema import ensure_schema
from ingest.catalog import TranscoderInfo, write_catalogue
from ingest.corpus import PromptRecord
from ingest.spec import GraphSpec
from ingest.writer import GraphWriter

APP_MAIN = Path(__file__).resolve().parents[1] / "app" / "main.py"
SMALL = SyntheticConfig(n_features=60, n_edges=700)
FAILURE = "prompt has 99 tokens, more than the maximum 64"
CATALOGUE_INFO = TranscoderInfo("synthetic-clt", "synthetic-model", "clt", 4, 4096, 64)


@dataclass
class Corpus:
    graphs: list[str]  # complete graph uids, in prompt order
    prompts: list[dict]
    hub: str  # the feature node with most inputs in graphs[0]
    feature_uid: str  # a catalog feature of graphs[0]


def wipe(driver: Driver) -> None:
    with driver.session(database=database_name()) as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 1000 ROWS").consume()
    clear_app_caches()


def clear_app_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def write_corpus(driver: Driver, n: int = 6, config: SyntheticConfig = SMALL) -> Corpus:
    """n synthetic graphs (two-hop, one-hop, addition prompts) and one failed prompt."""
    ensure_schema(driver)
    writer = GraphWriter(driver, database_name())
    prompts = synthetic_prompts(n, seed=7)
    graphs, records = [], []
    for row in prompts:
        record = synthetic_graph(row["text"], config, answer=row["answer"])
        prompt = PromptRecord(
            uid=row["id"], text=row["text"], tags=row["tags"], answer=row["answer"]
        )
        graphs.append(writer.write_graph(prompt, record).graph_uid)
        records.append(record)
    failed = PromptRecord.make("a prompt that was far too long", tags=["two-hop"])
    writer.write_failure(failed, GraphSpec("synthetic-model", "synthetic-clt", {}), FAILURE)
    first = records[0]
    write_catalogue(driver, CATALOGUE_INFO, _cards(first), database_name())
    targets = [t for t in first.edge_target.tolist() if first.nodes[t].kind == "feature"]
    hub = first.nodes[max(set(targets), key=targets.count)].node_id
    feature = next(node for node in first.nodes if node.kind == "feature")
    clear_app_caches()
    return Corpus(
        graphs, prompts, hub, f"{first.transcoder}/{feature.layer}/{feature.feature_index}"
    )


def _cards(record) -> list[FeatureCard]:
    """A catalogue entry for every feature of `record`: one context (the prompt, peaking at the
    feature's position), density, and logit effects."""
    cards = []
    for node in (n for n in record.nodes if n.kind == "feature"):
        acts = [
            float(node.activation) if p == node.position else 0.0
            for p in range(len(record.prompt_tokens))
        ]
        cards.append(
            FeatureCard(
                layer=node.layer,
                index=node.feature_index,
                label=f"auto {node.token}",
                density=0.01,
                active_texts=1,
                mean_activation=1.0,
                max_activation=float(node.activation),
                top_logits=["austin", "texas"],
                top_logit_effects=[0.8, 0.5],
                bottom_logits=["ohio"],
                bottom_logit_effects=[-0.4],
                top_contexts=[Context(list(record.prompt_tokens), acts)],
            )
        )
    return cards


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
