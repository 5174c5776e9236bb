"""The ad-hoc Cypher of docs/schema.md ("Your own Cypher"), run from the doc's own text against the
demo's two-hop graphs: each example returns what its title claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from db.connection import Neo4jHandle, database_name
from queries.examples import SCHEMA_DOC, cypher_examples, parse_examples
from queries.runner import run_cypher
from tests.demo_graphs import DemoSample, write_sample

README = Path(__file__).resolve().parents[1] / "README.md"
CHAIN = (
    "MATCH p = (:TokenNode {token: 'dallas'})-[:ATTR*1..3]->(:LogitNode {token: 'austin'}) RETURN p"
)


def test_the_doc_has_six_examples_and_the_readme_the_same_ones():
    examples = parse_examples(SCHEMA_DOC.read_text())
    assert len(examples) >= 6
    assert parse_examples(README.read_text()) == examples == list(cypher_examples())


DALLAS = "the capital of the state containing dallas is"


@pytest.fixture(scope="module")
def answers(neo4j_driver, demo_sample: DemoSample, builder):
    """Each example's rows on the demo's two-hop graphs (the sample, plus the Dallas prompt the
    examples name), by title; and the written records by prompt uid."""
    from circuitmap.demo.catalogue import label_features
    from ingest.aggregate import Aggregator
    from ingest.corpus import PromptRecord
    from ingest.writer import GraphWriter
    from tests.ingest_helpers import wipe_database

    wipe_database(neo4j_driver)
    write_sample(neo4j_driver, demo_sample, ("two_hop",))
    dallas = PromptRecord("two_hop:dallas", DALLAS, ["two_hop"], "austin", {}, "demo")
    record = label_features(builder.build(DALLAS), demo_sample.cards)
    handle = Neo4jHandle(neo4j_driver, database_name())
    GraphWriter(handle).write_graph(dallas, record)
    Aggregator(handle).fold_all()
    records = dict(zip((p.uid for p in demo_sample.prompts), demo_sample.records, strict=True))
    records[dallas.uid] = record
    rows = {e.title: run_cypher(handle, e.cypher, row_cap=0).frame for e in cypher_examples()}
    return handle, rows, records


def rows_of(answers, start: str):
    return next(frame for title, frame in answers[1].items() if title.startswith(start))


def test_a_variable_length_pattern_finds_the_city_state_capital_chain(answers):
    handle = answers[0]
    assert len(run_cypher(handle, CHAIN, row_cap=0).frame) > 0
    chains = rows_of(answers, "A two-hop chain")
    assert len(chains) > 0
    assert all("texas" in label for label in chains["label"])
    assert all(len(path) >= 3 for path in chains["path"])


def test_strongest_paths_come_strongest_first(answers):
    paths = rows_of(answers, "The strongest paths")
    assert len(paths) > 0
    strengths = paths["strength"].tolist()
    assert strengths == sorted(strengths, reverse=True) and 0 < strengths[-1] <= strengths[0] <= 1


def test_prompts_sharing_a_feature(answers):
    shared = rows_of(answers, "The prompts that share")
    assert len(shared) > 0 and shared["n_prompts"].iloc[0] >= 2
    assert all("texas" in label for label in shared["label"])


def test_a_features_inputs_and_outputs_are_its_edges(answers):
    handle, _, records = answers
    around = rows_of(answers, "A feature's direct inputs")
    assert set(around["direction"]) <= {"input", "output"} and len(around) > 0
    graph, node = around["graph"].iloc[0], around["feature"].iloc[0]
    prompt = run_cypher(handle, "MATCH (g:Graph {uid: $g}) RETURN g.prompt_uid AS p", {"g": graph})
    record = records[prompt.frame["p"].iloc[0]]
    ids = [n.node_id for n in record.nodes]
    i = ids.index(node)
    inputs = {ids[s] for s, t in zip(record.edge_source, record.edge_target, strict=True) if t == i}
    outputs = {
        ids[t] for s, t in zip(record.edge_source, record.edge_target, strict=True) if s == i
    }
    assert set(around.loc[around["direction"] == "input", "other"]) == inputs
    assert set(around.loc[around["direction"] == "output", "other"]) == outputs


def test_corpus_neighbours_over_agg_attr(answers):
    around = rows_of(answers, "A feature's neighbours")
    assert len(around) > 0 and (around["n_graphs"] >= 1).all()


def test_a_subgraph_as_rows_equals_the_records_strong_edges(answers):
    handle, _, records = answers
    edges = rows_of(answers, "A subgraph as rows")
    assert len(edges) > 0
    graph = (
        run_cypher(
            handle,
            "MATCH (g:Graph {status: 'complete'})-[:HAS_NODE]->(:TokenNode {token: 'dallas'}) "
            "RETURN g.prompt_uid AS p ORDER BY g.uid LIMIT 1",
        )
        .frame["p"]
        .iloc[0]
    )
    record = records[graph]
    weights = record.edge_weight.astype(np.float64)
    into = np.zeros(len(record.nodes))
    np.add.at(into, record.edge_target, np.abs(weights))
    ids = [n.node_id for n in record.nodes]
    expected = {
        (ids[s], ids[t])
        for s, t, w in zip(record.edge_source, record.edge_target, weights, strict=True)
        if abs(w) >= 0.05 * into[t]
    }
    assert set(zip(edges["source"], edges["target"], strict=True)) == expected
