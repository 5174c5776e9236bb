"""Editing a feature's label on the feature page marks it as edited (`label_source`), so the
precedence edited > imported > automatic of ingest.feature_labels and ingest.catalog holds for
labels edited in the dashboard (issue 17)."""

from __future__ import annotations

import pytest

from db.connection import Neo4jHandle, database_name
from ingest.feature_labels import FeatureLabel, write_labels
from tests.app_fixtures import SMALL_TRANSCODER, open_page, texts, wipe, write_small_corpus

SOURCE = "MATCH (f:Feature {uid: $uid}) RETURN f.label AS label, f.label_source AS source"


@pytest.fixture(scope="module")
def corpus(neo4j_driver):
    wipe(neo4j_driver)
    yield write_small_corpus(neo4j_driver)
    wipe(neo4j_driver)


def test_a_label_edited_on_the_feature_page_is_marked_edited_and_kept(neo4j_driver, corpus):
    handle = Neo4jHandle(neo4j_driver, database_name())
    record = next(iter(corpus.records.values()))
    node = next(n for n in record.nodes if n.kind == "feature")
    uid = corpus.feature_uid(node)
    assert handle.read(SOURCE, {"uid": uid})[0]["source"] == "auto"
    at = open_page("views/feature.py", feature=uid)
    at.text_input(key=f"ft_label_{uid}").set_value("says the state")
    next(b for b in at.button if b.label == "Save label").click().run()
    assert not at.exception and "Label saved" in texts(at)
    assert dict(handle.read(SOURCE, {"uid": uid})[0]) == {
        "label": "says the state",
        "source": "edited",
    }
    summary = write_labels(
        handle, SMALL_TRANSCODER, [FeatureLabel(node.layer, node.feature_index, "imported")]
    )
    assert summary.kept == 1
    assert dict(handle.read(SOURCE, {"uid": uid})[0]) == {
        "label": "says the state",
        "source": "edited",
    }
