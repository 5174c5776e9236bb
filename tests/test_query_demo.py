"""Queries and supernodes on the demo's own graphs (issue 6): the two-hop chain city -> state ->
capital is found by the path query, and a supernode of the state features collapses every two-hop
graph, also those ingested after it was made.

**Which features stand for a state.** `circuitmap.demo.concepts.state_concept` decides it from a
feature's catalogue card, and `circuitmap demo` stores the verdict at the front of the feature's
label (`circuitmap.demo.stages.demo_label`: "<concept> · <what it reads and says>"): "state texas
· ..." or, for a state feature whose top logit is the capital, "say austin (texas) · ...". Labels
without a concept start with a quoted token ('"is"/"," → "ohio"'). So in Cypher a state feature is
a `:Feature` whose label starts with "state " or "say ", and the features of state S are those
starting with "state S ·" or "say <capital> (S) ·". The tests check that this selection is exactly
`Concepts.of(cards, world)` (the in-memory reference the demo's checks use).

The sample (tests/demo_graphs.py) holds 8 two-hop prompts of 8 states. The demo model is trained
on the CPU and its weights (so its graphs) differ from machine to machine, so the tests check the
prompts whose graph the build reports with state features on a path from the city to the capital
(`demo.checks()`, the reference `features_on_path`), and that those are most of the sample. Measured
on one machine: 7 of the 8 sample prompts have the reported path; the query's 5 strongest paths
per graph run through the state features in 5 of those 7, its 20 strongest in all 7 (the state
chain of akron and of berkeley ranks below 5 weaker-state chains there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from circuitmap.demo.circuits import Concepts, features_on_path
from circuitmap.demo.concepts import DemoWorld
from circuitmap.demo.corpus import load_corpus
from circuitmap.demo.stages import DemoBuild
from circuitmap.records import GraphRecord
from cli.main import app
from db.config import load_settings
from db.server import local_password
from ingest.corpus import PromptRecord
from queries import saved, supernodes
from queries.runner import run_query
from tests.demo_graphs import DemoSample, reported_two_hop_paths, write_sample
from tests.query_helpers import handle_of

TWO_HOP = "two_hop"
# The catalogue's state features (see the module docstring) that have an instance in a complete
# graph of a prompt with the tag: membership grows as graphs of more states are ingested.
STATE_FEATURES = """
MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph {status: 'complete'})
  WHERE $tag IN p.tags
MATCH (g)-[:HAS_NODE]->(:FeatureNode)-[:INSTANCE_OF]->(f:Feature)
  WHERE f.label STARTS WITH 'state ' OR f.label STARTS WITH 'say '
RETURN DISTINCT f.uid AS feature_uid
"""
# The features of one state, by label alone.
FEATURES_OF_STATE = """
MATCH (f:Feature)
  WHERE f.label STARTS WITH 'state ' + $state + ' ·'
     OR (f.label STARTS WITH 'say ' AND f.label CONTAINS ' (' + $state + ') ·')
RETURN f.uid AS feature_uid
"""
# Strongest paths kept per graph (token_logit_paths' default: 5) when looking for the state chain
# among a prompt's paths: the state chain need not be among the 5 strongest (see above).
PATHS_PER_GRAPH = 20


@pytest.fixture(scope="module")
def concepts(demo: DemoBuild) -> Concepts:
    """The catalogue's state (and other) features, as the demo's own checks define them."""
    return Concepts.of(demo.cards(), DemoWorld.of(load_corpus(demo.model_dir).config))


@pytest.fixture(scope="module")
def with_path(demo: DemoBuild, demo_sample: DemoSample) -> list[tuple[PromptRecord, GraphRecord]]:
    """The sample's two-hop prompts (and graphs) whose path the build reports: most of them."""
    sample = demo_sample.of_task(TWO_HOP)
    reported = reported_two_hop_paths(demo)
    chosen = [(p, r) for p, r in sample if p.uid in reported]
    assert len(chosen) > len(sample) / 2, (len(chosen), len(sample))
    return chosen


@pytest.fixture
def two_hop_db(clean_db, demo_sample: DemoSample):
    """The catalogue and the sample's two-hop graphs; returns (driver, graph uid per prompt uid)."""
    uids = write_sample(clean_db, demo_sample, (TWO_HOP,))
    prompts = [p.uid for p, _ in demo_sample.of_task(TWO_HOP)]
    return clean_db, dict(zip(prompts, uids, strict=True))


def feature_uids(sample: DemoSample, keys) -> set[str]:
    return {f"{sample.info.uid}/{layer}/{index}" for layer, index in keys}


def active_features(records) -> set[tuple[int, int]]:
    return {(n.layer, n.feature_index) for r in records for n in r.nodes if n.kind == "feature"}


def node_id(record: GraphRecord, kind: str, token: str) -> str:
    return next(n.node_id for n in record.nodes if n.kind == kind and n.token == token)


def test_label_selection_is_the_concept_definition(two_hop_db, demo_sample, concepts):
    driver, _ = two_hop_db
    saved.save_query(
        handle_of(driver), "features-of-state", FEATURES_OF_STATE, "", {"state": "texas"}
    )
    states = {c.state for c in concepts.states.values()}
    assert len(states) >= 15  # nearly every state of the demo world has features
    for state in sorted(states):
        found = run_query(handle_of(driver), "features-of-state", {"state": state}).frame
        expected = feature_uids(demo_sample, concepts.features_of_state(state))
        assert expected and set(found["feature_uid"]) == expected, state


def test_city_to_capital_paths_run_through_the_state_features(
    two_hop_db, demo_sample, concepts, with_path
):
    """For every two-hop prompt whose path the build reports, the corpus-wide path query (city
    token -> capital logit) returns chains through the prompt's own state features; its
    excitatory ones pass only through state nodes that the in-memory reference also puts on an
    excitatory path."""
    driver, graphs = two_hop_db
    for prompt, record in with_path:
        city, state, capital = prompt.metadata["city"], prompt.metadata["state"], prompt.answer
        params = {"token": city, "logit": capital, "tag": TWO_HOP, "per_graph": PATHS_PER_GRAPH}
        found = run_query(handle_of(driver), "token_logit_paths", params).frame
        assert set(found["graph_uid"]) == {graphs[prompt.uid]}  # the city is in one prompt only
        own = concepts.features_of_state(state)
        own_uids = feature_uids(demo_sample, own)
        chains = found[[bool(own_uids & set(f)) for f in found["features"]]]
        assert len(chains) > 0, (prompt.uid, found[["features", "labels"]])
        start, end = node_id(record, "token", city), node_id(record, "logit", capital)
        assert all(ids[0] == start and ids[-1] == end for ids in chains["node_ids"])
        assert all(labels[0] for labels in chains["labels"])  # labelled from the catalogue
        excitatory = chains[[all(w > 0 for w in ws) for ws in chains["weights"]]]
        assert len(excitatory) > 0, prompt.uid
        reference = set(features_on_path(record, {city}, capital, own))
        state_nodes = {
            n
            for ids, uids in zip(excitatory["node_ids"], excitatory["features"], strict=True)
            for n, uid in zip(ids[1:-1], uids, strict=True)
            if uid in own_uids
        }
        assert state_nodes and state_nodes <= reference, (prompt.uid, state_nodes, reference)


def collapsed_state(driver, graph_uid: str):
    """The "state" group of a graph's collapsed view (None when the graph has no member)."""
    view = supernodes.collapsed_graph(handle_of(driver), graph_uid)
    groups = view.nodes.set_index("group")
    if "state" not in groups.index:
        return None, view
    assert groups.loc["state", "kind"] == "supernode"
    return groups.loc["state"], view


def assert_state_collapses(driver, graph_uid, prompt, record, concepts):
    """The graph's collapsed view has the "state" supernode holding the prompt's state features
    that lie on the city -> capital path, fed by the city token and reaching the capital."""
    state, view = collapsed_state(driver, graph_uid)
    assert state is not None, prompt.uid
    city, capital = prompt.metadata["city"], prompt.answer
    on_path = features_on_path(
        record, {city}, capital, concepts.features_of_state(prompt.metadata["state"])
    )
    assert on_path and set(on_path) <= set(state["node_ids"]), prompt.uid
    edges = view.edges.set_index(["source", "target"])["weight"]
    assert edges.get((node_id(record, "token", city), "state"), 0.0) > 0, prompt.uid
    assert edges.get(("state", node_id(record, "logit", capital)), 0.0) > 0, prompt.uid


def ingest_cli(demo: DemoBuild, corpus: Path, monkeypatch) -> None:
    """`circuitmap ingest` on the demo model and CLT (it refreshes supernodes at the end)."""
    settings = load_settings()
    if not settings.external:  # point the CLI at the test server whatever the home
        monkeypatch.setenv("NEO4J_URI", settings.local_uri)
        monkeypatch.setenv("NEO4J_PASSWORD", local_password(settings) or "")
    args = ["ingest", str(corpus), "--model", str(demo.model_dir)]
    result = CliRunner().invoke(app, [*args, "--transcoders", str(demo.clt_dir)])
    assert result.exit_code == 0, result.output
    assert "refreshed 1 query-defined supernodes" in " ".join(result.output.split())


def test_state_supernode_collapses_every_two_hop_graph_also_ingested_later(
    two_hop_db, demo_sample, concepts, with_path, demo, builder, tmp_path, monkeypatch
):
    driver, graphs = two_hop_db
    saved.save_query(handle_of(driver), "state-features", STATE_FEATURES, "", {"tag": TWO_HOP})
    node = supernodes.create_supernode(handle_of(driver), "state", query_name="state-features")
    sample = demo_sample.of_task(TWO_HOP)
    active = active_features(r for _, r in sample)
    assert set(node.members) == feature_uids(demo_sample, active & set(concepts.states))
    for prompt, record in with_path:  # those whose graph has the state on the path
        assert_state_collapses(driver, graphs[prompt.uid], prompt, record, concepts)

    # Two prompts of states the sample lacks, ingested through the CLI as users do (prompts whose
    # graph has the state on the path: the build reports the share that do).
    covered = {p.metadata["state"] for p, _ in sample}
    rows = sorted(demo.prompts(), key=lambda r: r["id"])
    reported = reported_two_hop_paths(demo)
    later, states = [], set()
    for row in rows:
        state = row["metadata"]["state"] if row["tags"][0] == TWO_HOP else None
        if state and row["id"] in reported and state not in covered | states and len(later) < 2:
            later.append(row)
            states.add(state)
    records = {row["id"]: builder.build(row["text"]) for row in later}
    new_active = active_features(records.values()) - active
    expected = set(node.members) | feature_uids(demo_sample, new_active & set(concepts.states))
    assert expected > set(node.members)  # the later graphs bring state features of their own
    corpus = tmp_path / "later.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({k: row[k] for k in ("id", "text", "tags", "answer")} | row["metadata"])
            + "\n"
            for row in later
        )
    )
    ingest_cli(demo, corpus, monkeypatch)
    assert set(supernodes.get_supernode(handle_of(driver), "state").members) == expected
    assert len(supernodes.history(handle_of(driver), "state")) == 2
    later_graphs = set()
    for row in later:
        graph_uid = driver.execute_query(
            "MATCH (:Prompt {uid: $uid})-[:HAS_GRAPH]->(g:Graph {status: 'complete'}) "
            "RETURN g.uid AS uid",
            uid=row["id"],
        ).records[0]["uid"]
        prompt = PromptRecord(row["id"], row["text"], row["tags"], row["answer"], row["metadata"])
        assert_state_collapses(driver, graph_uid, prompt, records[row["id"]], concepts)
        later_graphs.add(graph_uid)
    # Across the corpus: token -> state -> answer holds in every two-hop graph with the path.
    paths = run_query(
        handle_of(driver), "supernode_paths", {"supernodes": ["state"], "tag": TWO_HOP}
    ).frame
    assert len(paths) <= len(sample) + len(later)  # at most one row per graph
    on_path = paths[paths["graph_uid"].isin({graphs[p.uid] for p, _ in with_path} | later_graphs)]
    assert len(on_path) == len(with_path) + len(later)
    assert all(w > 0 for ws in on_path["hop_weights"] for w in ws)
