"""`circuitmap import`: graph JSON files land in the same schema, equal to the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from neo4j import Driver
from typer.testing import CliRunner

from circuitmap.graph_json import graph_to_json
from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from cli.main import app
from tests.ingest_helpers import assert_database_consistent, query, stored_graph

OLD_ERROR_ID = re.compile(r"^(-?\d+)_-1_(\d+)$")


def circuit_tracer_file(path: Path, prompt: str) -> dict:
    """A graph JSON as circuit-tracer 0.5.0 writes it: its own metadata and error ids."""
    record = synthetic_graph(prompt, SyntheticConfig(n_features=60, n_edges=1500))
    data = graph_to_json(record)
    data["metadata"].pop("circuitmap")
    old = {n["node_id"]: OLD_ERROR_ID.sub(r"0_\1_\2", n["node_id"]) for n in data["nodes"]}
    assert len(set(old.values())) == len(old)  # no error id collides with a feature here
    for node in data["nodes"]:
        node["node_id"] = node["jsNodeId"] = old[node["node_id"]]
    for link in data["links"]:
        link["source"], link["target"] = old[link["source"]], old[link["target"]]
    path.write_text(json.dumps(data))
    return data


def new_id(node: dict) -> str:
    """The file's node id in the record convention (error ids made collision-free)."""
    if node["feature_type"] == "mlp reconstruction error":
        return f"{node['layer']}_-1_{node['ctx_idx']}"
    return node["node_id"]


def test_import_gives_the_same_nodes_and_edges_as_the_file(clean_db: Driver, tmp_path: Path):
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    docs = [
        circuit_tracer_file(files[0], "the capital of the state containing dallas is"),
        circuit_tracer_file(files[1], "calc : 36 + 59 ="),
    ]
    (tmp_path / "broken.json").write_text("{not json")
    runner = CliRunner()
    result = runner.invoke(app, ["import", *map(str, files), str(tmp_path / "broken.json")])
    assert result.exit_code == 1, result.output
    assert "imported 2 graphs" in result.output and "broken.json" in result.output

    graphs = query(
        clean_db,
        "MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph) RETURN p.text AS prompt, g.uid AS uid,"
        " g.source AS source, g.n_edges AS n_edges",
    )
    assert {g["source"] for g in graphs} == {"imported"}
    for doc in docs:
        [graph] = [g for g in graphs if g["prompt"] == doc["metadata"]["prompt"]]
        nodes, edges = stored_graph(clean_db, graph["uid"])
        by_old = {n["node_id"]: n for n in doc["nodes"]}
        assert set(nodes) == {new_id(n) for n in doc["nodes"]}
        for node in doc["nodes"]:
            stored = nodes[new_id(node)]
            assert stored["position"] == node["ctx_idx"]
            assert stored.get("influence") == node["influence"]  # logits: none
            assert stored.get("activation") == node["activation"]
        want = {
            (new_id(by_old[link["source"]]), new_id(by_old[link["target"]])): link["weight"]
            for link in doc["links"]
        }
        assert edges.keys() == want.keys() and graph["n_edges"] == len(doc["links"])
        assert all(abs(edges[k] - w) <= 1e-7 * max(1.0, abs(w)) for k, w in want.items())
    assert_database_consistent(clean_db)

    again = runner.invoke(app, ["import", *map(str, files)])
    assert again.exit_code == 0 and "0 graphs" in again.output and "2 already" in again.output
