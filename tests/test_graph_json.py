"""Graph JSON export/import: lossless round trip, circuit-tracer files, no id collisions."""

import json

import numpy as np
import pytest

from circuitmap.graph_json import graph_to_json, read_graph_json, write_graph_json
from circuitmap.pipeline import GraphBuilder, GraphSettings
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder


@pytest.fixture(scope="module")
def record():
    builder = GraphBuilder(
        tiny_model("gpt2"),
        tiny_transcoder("clt"),
        GraphSettings(node_threshold=1.0),  # keep features of this random model
        tokenizer=tiny_tokenizer(),
    )
    return builder.build("the capital of the state containing dallas is")


def assert_same(a, b):
    assert a.nodes == b.nodes
    for name in ("edge_source", "edge_target", "edge_weight"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in (
        "prompt",
        "prompt_tokens",
        "model",
        "transcoder",
        "n_layers",
        "scores",
        "settings",
    ):
        assert getattr(a, name) == getattr(b, name)
    assert a.metadata == b.metadata


def test_round_trip_is_lossless(record, tmp_path):
    feature = next(n.node_id for n in record.nodes if n.kind == "feature")
    error = next((n.node_id for n in record.nodes if n.kind == "error"), feature)
    record.metadata["qParams"] = {
        "pinnedIds": [feature, error],
        "supernodes": [["state", feature, error]],
        "linkType": "both",
        "clickedId": feature,
        "sg_pos": "",
    }
    path = write_graph_json(record, tmp_path / "graph.json")
    again = read_graph_json(path)
    assert_same(record, again)
    assert_same(again, read_graph_json(write_graph_json(again, tmp_path / "again.json")))


def test_export_follows_the_schema(record):
    doc = graph_to_json(record, slug="dallas")
    assert doc["metadata"]["slug"] == "dallas"
    assert {"scan", "prompt_tokens", "prompt", "node_threshold"} <= doc["metadata"].keys()
    ids = [n["node_id"] for n in doc["nodes"]]
    assert len(ids) == len(set(ids))
    types = {n["feature_type"] for n in doc["nodes"]}
    assert types <= {"cross layer transcoder", "mlp reconstruction error", "embedding", "logit"}
    logit = next(n for n in doc["nodes"] if n["feature_type"] == "logit")
    assert logit["layer"] == str(record.n_layers + 1) and logit["clerp"].startswith('Output "')
    assert sum(n["is_target_logit"] for n in doc["nodes"]) == 1
    assert all(link["source"] in ids and link["target"] in ids for link in doc["links"])


def circuit_tracer_style_file(path):
    """A graph as circuit-tracer 0.5.0 writes it: error ids "0_{layer}_{pos}", logits at L+1."""
    tokens = ["<bos>", "dallas", "is"]
    nodes = [
        {"node_id": "0_7_1", "feature": 35, "layer": "0", "ctx_idx": 1,
         "feature_type": "cross layer transcoder", "influence": 0.3, "activation": 1.5},
        {"node_id": "1_2_2", "feature": 8, "layer": "1", "ctx_idx": 2,
         "feature_type": "cross layer transcoder", "influence": 0.5, "activation": 0.7},
        {"node_id": "0_1_2", "feature": -1, "layer": "1", "ctx_idx": 2,
         "feature_type": "mlp reconstruction error", "influence": 0.6},
        {"node_id": "E_5_1", "feature": 1, "layer": "E", "ctx_idx": 1,
         "feature_type": "embedding", "influence": 0.2},
        {"node_id": "3_9_2", "feature": 9, "layer": "3", "ctx_idx": 2, "feature_type": "logit",
         "token_prob": 0.8, "is_target_logit": True, "clerp": 'Output " austin" (p=0.800)'},
    ]  # fmt: skip
    links = [
        {"source": "E_5_1", "target": "0_7_1", "weight": 1.0},
        {"source": "0_7_1", "target": "1_2_2", "weight": 0.5},
        {"source": "0_1_2", "target": "3_9_2", "weight": -0.25},
        {"source": "1_2_2", "target": "3_9_2", "weight": 2.0},
        {"source": "gone", "target": "3_9_2", "weight": 1.0},
    ]
    doc = {
        "metadata": {"slug": "ct", "scan": "tiny-scan", "transcoder_list": [],
                     "prompt_tokens": tokens, "prompt": "dallas is", "node_threshold": 0.8,
                     "schema_version": 1},
        "qParams": {"pinnedIds": ["0_1_2", "3_9_2"], "supernodes": [["texas", "1_2_2", "0_1_2"]],
                    "linkType": "both", "clickedId": "0_1_2", "sg_pos": ""},
        "nodes": nodes,
        "links": links,
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def test_import_circuit_tracer_file(tmp_path):
    record = read_graph_json(circuit_tracer_style_file(tmp_path / "ct.json"))
    by_id = {n.node_id: n for n in record.nodes}
    assert record.n_layers == 2
    assert set(by_id) == {"0_7_1", "1_2_2", "1_-1_2", "E_5_1", "2_9_2"}
    error, logit = by_id["1_-1_2"], by_id["2_9_2"]
    assert (error.kind, error.layer, error.position) == ("error", 1, 2)
    assert (logit.kind, logit.token, logit.probability, logit.feature_index) == (
        "logit",
        " austin",
        0.8,
        9,
    )
    assert by_id["0_7_1"].feature_index == 7 and by_id["0_7_1"].token == "dallas"
    assert by_id["E_5_1"].feature_index == 5
    ids = [n.node_id for n in record.nodes]
    edges = {
        (ids[s], ids[t]): w
        for s, t, w in zip(record.edge_source, record.edge_target, record.edge_weight, strict=True)
    }
    assert edges[("1_-1_2", "2_9_2")] == -0.25 and len(edges) == 4
    q = record.metadata["qParams"]
    assert q["pinnedIds"] == ["1_-1_2", "2_9_2"] and q["clickedId"] == "1_-1_2"
    assert q["supernodes"] == [["texas", "1_2_2", "1_-1_2"]]
    assert record.metadata["dropped_links"] == 1
    # Re-export keeps the file's metadata and uses collision-free ids.
    doc = graph_to_json(record)
    assert doc["metadata"]["slug"] == "ct" and doc["metadata"]["scan"] == "tiny-scan"
    assert "1_-1_2" in [n["node_id"] for n in doc["nodes"]]
    assert_same(record, read_graph_json(write_graph_json(record, tmp_path / "out.json")))


def test_bad_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read graph JSON"):
        read_graph_json(bad)
    bad.write_text(json.dumps({"nodes": []}))
    with pytest.raises(ValueError, match="needs 'metadata'"):
        read_graph_json(bad)


def test_colliding_circuit_tracer_ids_become_distinct_nodes(tmp_path):
    path = circuit_tracer_style_file(tmp_path / "ct.json")
    doc = json.loads(path.read_text())
    doc["nodes"].append(
        {"node_id": "0_1_2", "feature": 2, "layer": "0", "ctx_idx": 2,
         "feature_type": "cross layer transcoder", "influence": 0.9, "activation": 0.1}
    )  # fmt: skip
    path.write_text(json.dumps(doc))
    record = read_graph_json(path)
    ids = [n.node_id for n in record.nodes]
    assert "1_-1_2" in ids and "0_1_2" in ids and len(ids) == len(set(ids))
    assert record.metadata["ambiguous_node_ids"] == ["0_1_2"]
