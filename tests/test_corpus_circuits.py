"""Corpus circuits on a real Neo4j: suggestion recovers planted groups, accepting one saves a
supernode, the corpus circuit's rows, validation stored and idempotent, and the dashboard page."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.transcoders import save_transcoder
from cli.main import app as cli_app
from db.connection import Neo4jHandle, database_name
from ingest.payload import feature_uid as catalog_uid
from ingest.validation import run_validation
from queries.corpus import (
    PathSearch,
    corpus_circuit,
    suggest_supernodes,
    suggestion_inputs,
    validation_inputs,
    validation_results,
    validation_runs,
)
from queries.supernodes import create_supernode, get_supernode
from tests.app_fixtures import clear_app_caches, open_page, texts
from tests.planted import CAPITAL_INDEX, STATE_INDEX, feature_uid, planted_graph, store
from tests.tiny_models import (
    save_tiny_checkpoint,
    tiny_model,
    tiny_tokenizer,
    tiny_transcoder,
)

SEEDS = range(8)
CITIES = ("dallas", "houston", "oakland")
PLANTED = {
    state: {feature_uid(0, STATE_INDEX[state]), feature_uid(2, CAPITAL_INDEX[state])}
    for state in STATE_INDEX
}


@pytest.fixture
def handle(clean_db) -> Neo4jHandle:
    from db.schema import ensure_schema

    handle = Neo4jHandle(clean_db, database_name())
    ensure_schema(handle)
    return handle


@pytest.fixture
def planted(handle: Neo4jHandle) -> Neo4jHandle:
    """24 two-hop graphs (3 cities x 8 seeds) with planted state -> capital chains."""
    for seed in SEEDS:
        for city in CITIES:
            graph = planted_graph(city, seed=seed)
            store(handle.driver, dataclasses.replace(graph, prompt=f"{graph.prompt} ({seed})"))
    return handle


def test_suggestion_recovers_the_planted_groups(planted: Neo4jHandle) -> None:
    inputs = suggestion_inputs(planted, "two-hop")
    assert len(inputs.graphs) == len(SEEDS) * len(CITIES)
    suggestions = suggest_supernodes(inputs)
    groups = [set(s.uids) for s in suggestions]
    for state, members in PLANTED.items():
        assert members in groups, (state, groups)
        found = suggestions[groups.index(members)]
        share = (2 if state == "texas" else 1) / 3  # texas has two of the three cities
        assert found.group.coverage == pytest.approx(share)
        assert found.label in {
            f"{state} (state)",
            f"say {'austin' if state == 'texas' else 'sacramento'}",
        }
    # the planted groups are the two most cohesive suggestions
    assert {frozenset(g) for g in groups[:2]} == {frozenset(m) for m in PLANTED.values()}


def test_accepting_a_suggestion_saves_a_supernode(planted: Neo4jHandle) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli_app, ["supernode", "suggest", "--tag", "two-hop", "-f", "json"])
    assert shown.exit_code == 0, shown.output
    suggestions = suggest_supernodes(suggestion_inputs(planted, "two-hop"))
    index = next(i for i, s in enumerate(suggestions) if set(s.uids) == PLANTED["texas"])
    saved = runner.invoke(
        cli_app,
        ["supernode", "suggest", "--tag", "two-hop", "--accept", str(index), "--name", "texas"],
    )
    assert saved.exit_code == 0, saved.output
    node = get_supernode(planted, "texas")
    assert node is not None and set(node.members) == PLANTED["texas"]
    again = runner.invoke(
        cli_app,
        ["supernode", "suggest", "--tag", "two-hop", "--accept", str(index), "--name", "texas"],
    )
    assert again.exit_code == 1 and "exists" in again.output
    missing = runner.invoke(cli_app, ["supernode", "suggest", "--tag", "no-such-tag"])
    assert missing.exit_code == 1 and "no-such-tag" in missing.output


def test_corpus_circuit_rows(planted: Neo4jHandle) -> None:
    create_supernode(planted, "texas", members=sorted(PLANTED["texas"]))
    view = corpus_circuit(planted, "two-hop", ["texas"], PathSearch(min_graphs=2))
    nodes = view.nodes.set_index("node")
    assert nodes.at["supernode:texas", "support"] == 16  # 2 texas cities x 8 seeds
    assert nodes.at["supernode:texas", "n_members"] == 2
    assert nodes.at["logit:austin", "support"] == 16
    assert nodes.at["token:dallas", "support"] == 8
    assert f"feature:{feature_uid(0, STATE_INDEX['california'])}" in nodes.index
    edges = view.edges.set_index(["source", "target"])
    to_capital = edges.loc[("supernode:texas", "logit:austin")]
    assert to_capital["n_graphs"] >= 16
    california = (
        f"feature:{feature_uid(0, STATE_INDEX['california'])}",
        f"feature:{feature_uid(2, CAPITAL_INDEX['california'])}",
    )
    assert edges.loc[california, "n_graphs"] == 8
    assert edges.loc[california, "mean_weight"] == pytest.approx(3.0)
    around = corpus_circuit(planted, "two-hop", ["texas"], only="texas")
    assert set(around.nodes["node"]) >= {"supernode:texas", "logit:austin", "token:dallas"}
    assert "logit:sacramento" not in set(around.nodes["node"])
    shown = CliRunner().invoke(cli_app, ["circuit", "--tag", "two-hop", "-f", "csv"])
    assert shown.exit_code == 0 and "supernode:texas" in shown.output


# ---- validation with a real (tiny) model ------------------------------------------------------

PROMPTS = [
    "the capital of the state containing dallas is",
    "the capital of texas is",
    "dallas is a city in texas",
    "austin is the capital of the state",
]


@pytest.fixture
def tiny_corpus(handle: Neo4jHandle) -> tuple[Neo4jHandle, GraphBuilder]:
    """Graphs of a tiny random model, computed and stored, and two supernodes of its features."""
    torch.manual_seed(0)
    model, tc = tiny_model("llama"), tiny_transcoder("clt")
    # unpruned: a random model's features carry too little influence to survive pruning
    settings = GraphSettings(node_threshold=1.0, edge_threshold=1.0)
    builder = GraphBuilder(model, tc, settings, tokenizer=tiny_tokenizer())
    features: list[set[str]] = []
    for text in PROMPTS:
        record = builder.build(text)
        store(handle.driver, record, tags=("tiny",))
        features.append(
            {
                catalog_uid(record.transcoder, n.layer, n.feature_index)
                for n in record.nodes
                if n.kind == "feature"
            }
        )
    shared = sorted(set.intersection(*features[:2]) - features[3])[:3]
    donor = sorted(features[3] - features[0])[:3]
    assert shared and donor
    create_supernode(handle, "first", members=shared)
    create_supernode(handle, "second", members=donor)
    return handle, builder


def test_validation_is_stored_and_rerunning_adds_nothing(tiny_corpus) -> None:
    handle, builder = tiny_corpus
    inputs = validation_inputs(handle, "first", "tiny", scale=-1.0)
    assert len(inputs.prompts) == len(PROMPTS)
    report = run_validation(handle, builder, inputs.spec, inputs.prompts, batch_size=3)
    assert report.computed == len(PROMPTS) and report.skipped == 0
    results = validation_results(handle, report.uid)
    assert len(results) == len(PROMPTS)
    assert results["present"].any()
    for row in results.itertuples():
        assert 0.0 <= row.p_before <= 1.0 and 0.0 <= row.p_after <= 1.0
        assert row.changed == (row.top_before != row.top_after)
        if not row.present:  # nothing to scale: the prompt runs unchanged
            assert row.p_after == pytest.approx(row.p_before, abs=1e-6)
    linked = handle.read(
        "MATCH (:Supernode {name: 'first'})<-[:VALIDATES]-(v:Validation)-[:HAS_RESULT]->(r)"
        "-[:ON_GRAPH]->(g:Graph) RETURN count(DISTINCT r) AS results, count(DISTINCT g) AS graphs"
    )[0]
    assert linked["results"] == len(PROMPTS) and linked["graphs"] == len(PROMPTS)
    before = handle.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    again = run_validation(handle, builder, inputs.spec, inputs.prompts)
    assert again.computed == 0 and again.skipped == len(PROMPTS) and again.uid == report.uid
    assert handle.read("MATCH (n) RETURN count(n) AS n")[0]["n"] == before
    runs = validation_runs(handle, "first")
    assert len(runs) == 1 and runs.iloc[0]["n_prompts"] == len(PROMPTS)


def test_swap_injects_the_other_supernode_everywhere(tiny_corpus) -> None:
    handle, builder = tiny_corpus
    inputs = validation_inputs(handle, "first", "tiny", other="second", max_donors=1)
    assert inputs.spec.kind == "swap" and len(inputs.spec.donors) == 1
    donor = inputs.spec.donors[0].graph_uid
    half = run_validation(handle, builder, inputs.spec, inputs.prompts[:2])
    assert half.computed == 2
    rest = run_validation(handle, builder, inputs.spec, inputs.prompts)  # resumes
    assert rest.computed == len(PROMPTS) - 2 and rest.skipped == 2
    results = validation_results(handle, rest.uid)
    assert len(results) == len(PROMPTS)
    # the other supernode is injected into every prompt, "first" active there or not: all change
    others = results[results["graph_uid"] != donor]
    assert (others["p_after"] - others["p_before"]).abs().min() > 0
    # the donor itself, given its own activations, changes only where "first" is removed
    own = results[results["graph_uid"] == donor].iloc[0]
    if not own["present"]:
        assert own["p_after"] == pytest.approx(own["p_before"], abs=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        validation_inputs(handle, "first", "tiny", scale=-1.0, other="second")
    with pytest.raises(LookupError, match="no-such"):
        validation_inputs(handle, "no-such", "tiny", scale=-1.0)


def test_swap_strength_and_remove_scale_are_a_new_run(tiny_corpus) -> None:
    handle, builder = tiny_corpus
    plain = validation_inputs(handle, "first", "tiny", other="second", max_donors=1)
    strong = validation_inputs(handle, "first", "tiny", other="second", max_donors=1, strength=3.0)
    inverted = validation_inputs(
        handle, "first", "tiny", other="second", max_donors=1, remove_scale=-1.0
    )
    uids = {plain.spec.uid, strong.spec.uid, inverted.spec.uid}
    assert len(uids) == 3
    results = {}
    for inputs in (plain, strong, inverted):
        report = run_validation(handle, builder, inputs.spec, inputs.prompts)
        assert report.computed == len(PROMPTS)
        results[inputs.spec.uid] = validation_results(handle, report.uid).set_index("graph_uid")
    runs = validation_runs(handle, "first").set_index("uid")
    assert runs.loc[strong.spec.uid, "strength"] == 3.0
    assert runs.loc[inverted.spec.uid, "remove_scale"] == -1.0
    assert runs.loc[plain.spec.uid, "strength"] == 1.0
    # a stronger injection moves every prompt's answer probability further
    donor = plain.spec.donors[0].graph_uid
    base, more = results[plain.spec.uid], results[strong.spec.uid]
    others = base.index != donor
    assert ((base["p_after"] - more["p_after"]).abs()[others] > 0).all()
    # inverting instead of removing changes the prompts where "first" is active, and only those
    flipped = results[inverted.spec.uid]
    present = base["present"]
    assert ((base["p_after"] - flipped["p_after"]).abs()[present] > 0).all()
    assert (base["p_after"] - flipped["p_after"]).abs()[~present].max() < 1e-6
    # re-running any of them adds nothing
    again = run_validation(handle, builder, strong.spec, strong.prompts)
    assert again.computed == 0 and again.uid == strong.spec.uid
    # the dashboard tells the three runs apart
    clear_app_caches()
    at = open_page("views/corpus_circuit.py", tag="tiny")
    assert not at.exception, at.exception
    options = at.selectbox(key="cc_run").options
    assert len(set(options)) == 3
    assert any("strength 3, remove x0" in o for o in options)
    assert any("strength 1, remove x-1" in o for o in options)
    with pytest.raises(ValueError, match="swap"):
        validation_inputs(handle, "first", "tiny", scale=-1.0, strength=2.0)
    with pytest.raises(ValueError, match="positive"):
        validation_inputs(handle, "first", "tiny", other="second", strength=0.0)


def test_validate_command_stores_the_swap_options(tiny_corpus, tmp_path) -> None:
    handle, _ = tiny_corpus
    model_dir = save_tiny_checkpoint("llama", tmp_path / "model")  # the fixture's model, saved
    tc_dir = save_transcoder(tiny_transcoder("clt"), tmp_path / "clt")
    args = ["validate", "first", "--tag", "tiny", "--swap-with", "second", "--max-donors", "1"]
    args += ["--model", str(model_dir), "--transcoders", str(tc_dir), "-f", "csv"]
    runner = CliRunner()
    first = runner.invoke(cli_app, [*args, "--strength", "3", "--remove-scale", "-1"])
    assert first.exit_code == 0, first.output
    assert f"{len(PROMPTS)} prompts computed, 0 already stored" in first.output
    runs = validation_runs(handle, "first")
    assert len(runs) == 1
    assert runs.iloc[0]["strength"] == 3.0 and runs.iloc[0]["remove_scale"] == -1.0
    again = runner.invoke(cli_app, [*args, "--strength", "3", "--remove-scale", "-1"])
    assert again.exit_code == 0, again.output
    assert f"0 prompts computed, {len(PROMPTS)} already stored" in again.output
    plain = runner.invoke(cli_app, args)  # other options: another run
    assert plain.exit_code == 0 and f"{len(PROMPTS)} prompts computed" in plain.output
    assert len(validation_runs(handle, "first")) == 2
    bad = runner.invoke(cli_app, ["validate", "first", "--tag", "tiny", "--scale", "-1"] + [
        "--strength", "2", "--model", str(model_dir), "--transcoders", str(tc_dir)
    ])  # fmt: skip
    assert bad.exit_code != 0 and "swap" in bad.output


def test_corpus_circuit_page_renders(planted: Neo4jHandle) -> None:
    create_supernode(planted, "texas", members=sorted(PLANTED["texas"]))
    clear_app_caches()
    at = open_page("views/corpus_circuit.py", tag="two-hop")
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Corpus circuit" in shown
    assert "suggested supernodes" in shown
    assert "No validation runs yet" in shown
    assert any(t.label == "Circuit" for t in at.tabs)
    nodes = [d.value for d in at.dataframe if "support" in d.value.columns][0]
    assert "supernode:texas" in set(nodes["node"])
