"""The interventions page with a real (tiny) model and transcoder on disk and its graph in Neo4j:
scaling a feature changes the top logits, shown next to the original ones."""

from __future__ import annotations

import pytest

from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.transcoders import save_transcoder
from db.connection import database_name
from db.schema import ensure_schema
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter
from tests.app_fixtures import clear_app_caches, open_page, texts, wipe
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder

PROMPT = "the capital of the state containing dallas is"


@pytest.fixture(scope="module")
def tiny_graph(neo4j_driver, tmp_path_factory):
    """A tiny Llama and CLT saved as files, and the graph of PROMPT computed from those files
    (unpruned nodes: the random model's features hold little influence)."""
    root = tmp_path_factory.mktemp("tiny")
    model_dir, tc_dir = root / "model", root / "clt"
    tiny_model("llama").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    save_transcoder(tiny_transcoder("clt"), tc_dir)
    record = GraphBuilder.from_paths(
        str(model_dir), str(tc_dir), GraphSettings(batch_size=32, node_threshold=1.0)
    ).build(PROMPT)
    wipe(neo4j_driver)
    ensure_schema(neo4j_driver)
    written = GraphWriter(neo4j_driver, database_name()).write_graph(
        PromptRecord.make(PROMPT), record
    )
    clear_app_caches()
    yield written.graph_uid, record, tc_dir
    wipe(neo4j_driver)


def test_scaling_a_feature_changes_the_top_logits(tiny_graph, monkeypatch):
    graph_uid, record, tc_dir = tiny_graph
    monkeypatch.setenv("CIRCUITMAP_TRANSCODERS", str(tc_dir))  # the graph names it, not its path
    strongest = min((n for n in record.nodes if n.kind == "feature"), key=lambda n: n.influence)
    at = open_page("views/interventions.py", graph=graph_uid, pin=strongest.node_id)
    assert not at.exception and not at.error
    assert at.multiselect(key="iv_features").value == [strongest.node_id]
    at.button(key="iv_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    result = next(d.value for d in at.dataframe if "intervened" in d.value.columns)
    assert (
        abs(
            result["original"].max() - max(n.probability for n in record.nodes if n.kind == "logit")
        )
        < 1e-4
    )
    assert result["change"].abs().max() > 0  # inhibiting the strongest feature moves the logits
    assert len(at.get("plotly_chart")) == 1


def test_missing_weights_are_explained(tiny_graph, monkeypatch):
    graph_uid, _, _ = tiny_graph
    monkeypatch.delenv("CIRCUITMAP_TRANSCODERS", raising=False)
    at = open_page("views/interventions.py", graph=graph_uid)
    assert not at.exception
    assert "transcoders (tiny-clt)" in texts(at)
