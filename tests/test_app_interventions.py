"""The interventions page with the demo model and transcoders on disk and the demo's graphs in
Neo4j: inhibiting the features that say "ohio" in the akron prompt takes the answer (columbus)
away, shown next to the original logits."""

from __future__ import annotations

import pytest

from tests.app_fixtures import open_page, table, texts, wipe, write_demo

AKRON = "two_hop:akron"


@pytest.fixture(scope="module")
def corpus(neo4j_driver, demo_sample):
    wipe(neo4j_driver)
    yield write_demo(neo4j_driver, demo_sample, with_failure=False)
    wipe(neo4j_driver)


def test_inhibiting_the_state_features_changes_the_top_logits(corpus, monkeypatch):
    # No CIRCUITMAP_MODEL / _TRANSCODERS: the weights are found where the graph was computed from.
    monkeypatch.delenv("CIRCUITMAP_MODEL", raising=False)
    monkeypatch.delenv("CIRCUITMAP_TRANSCODERS", raising=False)
    strongest = corpus.features(AKRON)[0]
    assert "state ohio" in strongest.label
    ohio = [n.node_id for n in corpus.features(AKRON) if "state ohio" in n.label]
    at = open_page("views/interventions.py", graph=corpus.graphs[AKRON], pin=",".join(ohio))
    assert not at.exception and not at.error
    assert corpus.prompt(AKRON).text in texts(at)
    assert at.multiselect(key="iv_features").value == ohio
    at.button(key="iv_run").click().run()  # the table's default edit: scale by -1
    assert not at.exception, [e.value for e in at.exception]
    result = table(at, "token", "intervened").set_index("token")
    assert result["original"].idxmax() == "columbus"
    assert result.loc["columbus", "original"] > 0.99
    assert result["intervened"].idxmax() != "columbus"
    assert result.loc["columbus", "change"] < -0.5
    assert len(at.get("plotly_chart")) == 1


def test_picking_features_goes_to_the_url(corpus, demo, monkeypatch):
    monkeypatch.setenv("CIRCUITMAP_MODEL", str(demo.model_dir))
    monkeypatch.setenv("CIRCUITMAP_TRANSCODERS", str(demo.clt_dir))
    ohio = [n.node_id for n in corpus.features(AKRON) if "state ohio" in n.label]
    at = open_page("views/interventions.py", graph=corpus.graphs[AKRON])
    assert "Pick at least one feature" in texts(at)
    at.multiselect(key="iv_features").set_value(ohio).run()
    assert not at.exception
    pinned = at.query_params["pin"]
    assert (pinned[-1] if isinstance(pinned, list) else pinned).split(",") == ohio


def test_missing_weights_are_explained(corpus, monkeypatch):
    monkeypatch.delenv("CIRCUITMAP_MODEL", raising=False)
    monkeypatch.setenv("CIRCUITMAP_TRANSCODERS", "/nowhere/clt")
    at = open_page("views/interventions.py", graph=corpus.graphs[AKRON])
    assert not at.exception
    assert "need its weights on this machine" in texts(at)
    assert "transcoders (/nowhere/clt)" in texts(at)
