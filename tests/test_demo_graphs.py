"""The demo sample as stored: every graph equal to the computed one, every feature node linked to
its catalogue card (with the card's label)."""

from __future__ import annotations

from tests.demo_graphs import write_sample
from tests.ingest_helpers import assert_database_consistent, assert_same_graph, query


def test_demo_sample_is_stored_as_computed(clean_db, demo_sample):
    uids = write_sample(clean_db, demo_sample)
    assert len(uids) == len(demo_sample.records) == len(set(uids))
    for uid, record in zip(uids, demo_sample.records, strict=True):
        assert_same_graph(clean_db, uid, record)
    assert_database_consistent(clean_db)
    unlinked = query(
        clean_db,
        "MATCH (n:FeatureNode) WHERE NOT EXISTS { (n)-[:INSTANCE_OF]->(:Feature {label: n.label}) }"
        " RETURN count(n) AS n",
    )
    assert unlinked == [{"n": 0}]


def test_graphs_name_their_model_portably_and_record_where_it_was_loaded(demo, demo_sample):
    record = demo_sample.records[0]
    # The uid is the directory's name (the same on every machine); the path is metadata.
    assert record.model == demo.model_dir.name
    assert record.metadata["model_path"] == str(demo.model_dir.resolve())
    assert record.metadata["transcoder_path"] == str(demo.clt_dir.resolve())
