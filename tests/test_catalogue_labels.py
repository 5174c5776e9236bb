"""Catalogues and imported labels on `:Feature` nodes and on graph nodes (real Neo4j).

Path-query rows are read through the library runner (`token_logit_paths`) and the plain node
list (`graph_nodes`)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from neo4j import Driver
from typer.testing import CliRunner

from circuitmap.graph_json import graph_to_json
from circuitmap.synthetic import SyntheticConfig, synthetic_graph
from circuitmap.transcoders import save_transcoder
from cli.main import app
from db.connection import Neo4jHandle, database_name
from ingest.feature_labels import read_label_file, write_labels
from queries.labels import set_feature_label
from queries.runner import run_query
from tests.catalogue_fixtures import CITY, PLANTED_LAYER, planted
from tests.ingest_helpers import query

TRANSCODER = "synthetic-clt"  # the transcoder uid of synthetic graphs
PROMPT = "the capital of the state containing dallas is"


def graph_file(path: Path, prompt: str) -> Path:
    """A graph JSON as Neuronpedia serves it: no circuitmap metadata, empty clerps."""
    data = graph_to_json(synthetic_graph(prompt, SyntheticConfig(n_features=40, n_edges=600)))
    data["metadata"].pop("circuitmap")
    for node in data["nodes"]:
        if node["feature_type"] == "cross layer transcoder":
            node["clerp"] = ""
    path.write_text(json.dumps(data))
    return path


def graph_features(data_file: Path) -> list[tuple[int, int]]:
    """(layer, index) of the file's features, from their node ids `layer_index_position`."""
    data = json.loads(data_file.read_text())
    ids = [n["node_id"] for n in data["nodes"] if n["feature_type"] == "cross layer transcoder"]
    return sorted({(int(i.split("_")[0]), int(i.split("_")[1])) for i in ids})


def write_label_file(path: Path, fmt: str, features: list[tuple[int, int]]) -> dict:
    """The features' labels in one of the accepted formats; returns {(layer, index): label}."""
    labels = {f: f"{fmt} feature {f[0]}.{f[1]}" for f in features}
    if fmt == "csv":
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["layer", "index", "label"])
            out.writerows([layer, index, text] for (layer, index), text in labels.items())
            out.writerow(["x", "1", "a row with a bad layer"])
    elif fmt == "json":
        rows = [{"layer": lay, "index": i, "label": t} for (lay, i), t in labels.items()]
        path.write_text(json.dumps(rows))
    else:  # Neuronpedia's explanation export: source ids as layers, string indices
        rows = [
            {"modelId": "gemma-2-2b", "layer": f"{lay}-clt-hp", "index": str(i),
             "description": t, "typeName": "oai_token-act-pair",
             "explanationModelName": "gpt-4o-mini", "embedding": None}
            for (lay, i), t in labels.items()
        ]  # fmt: skip
        rows.append({**rows[0], "description": "a second explanation, ignored"})
        if fmt == "neuronpedia-jsonl":
            path.write_bytes(gzip.compress("\n".join(map(json.dumps, rows)).encode()))
        else:
            path.write_text(json.dumps({"explanations": rows}))
    return labels


FORMATS = {
    "csv": "labels.csv",
    "json": "labels.json",
    "neuronpedia-jsonl": "batch-0.jsonl.gz",
    "neuronpedia-json": "export.json",
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_label_files_land_on_features_and_graph_nodes(clean_db: Driver, tmp_path: Path, fmt):
    runner = CliRunner()
    first = graph_file(tmp_path / "first.json", PROMPT)
    assert runner.invoke(app, ["import", str(first)]).exit_code == 0
    labels = write_label_file(tmp_path / FORMATS[fmt], fmt, graph_features(first))
    parsed = read_label_file(tmp_path / FORMATS[fmt])
    assert {(x.layer, x.index): x.label for x in parsed.labels} == labels
    assert len(parsed.errors) == (1 if fmt == "csv" else 0)

    result = runner.invoke(app, ["catalogue", "labels", str(tmp_path / FORMATS[fmt])])
    assert result.exit_code == 0, result.output
    assert f"{len(labels)} labels for {TRANSCODER}" in result.output.replace(",", "")
    stored = query(
        clean_db,
        "MATCH (f:Feature {transcoder_uid: $t}) RETURN f.layer AS layer, f.index AS index,"
        " f.label AS label, f.label_source AS source",
        t=TRANSCODER,
    )
    assert {(r["layer"], r["index"]): r["label"] for r in stored} == labels
    assert {r["source"] for r in stored} == {"imported"}

    # A graph imported after the labels shows them as well.
    second = graph_file(tmp_path / "second.json", "calc : 36 + 59 =")
    assert runner.invoke(app, ["import", str(second)]).exit_code == 0
    for graph in query(clean_db, "MATCH (g:Graph) RETURN g.uid AS uid"):
        rows = run_query(_handle(clean_db), "graph_nodes", {"graph": graph["uid"]}).frame.to_dict(
            "records"
        )
        features = [r for r in rows if r["kind"] == "feature"]
        assert features
        for row in features:
            want = labels.get((row["layer"], row["feature_index"]))
            assert row["label"] == (want if want is not None else row["label"])
        if graph["uid"].startswith(_prompt_uid(PROMPT)):
            assert all(r["label"] == labels[(r["layer"], r["feature_index"])] for r in features)


def _handle(driver: Driver) -> Neo4jHandle:
    return Neo4jHandle(driver, database_name())


def _prompt_uid(text: str) -> str:
    from ingest.spec import prompt_uid

    return prompt_uid(text)


def test_path_query_rows_show_imported_labels(clean_db: Driver, tmp_path: Path):
    runner = CliRunner()
    file = graph_file(tmp_path / "graph.json", PROMPT)
    labels = write_label_file(tmp_path / "labels.csv", "csv", graph_features(file))
    assert runner.invoke(app, ["import", str(file)]).exit_code == 0
    assert runner.invoke(app, ["catalogue", "labels", str(tmp_path / "labels.csv")]).exit_code == 0
    logits = query(clean_db, "MATCH (l:LogitNode) RETURN DISTINCT l.token AS token")
    rows = []
    for logit in logits:
        params = {"token": "dallas", "logit": logit["token"], "min_strength": 0.0, "max_hops": 3}
        rows += run_query(_handle(clean_db), "token_logit_paths", params).frame.to_dict("records")
    assert rows, "no token -> logit path in the synthetic graph"
    for row in rows:
        for uid, label in zip(row["features"], row["labels"], strict=True):
            layer, index = map(int, uid.split("/")[-2:])
            assert label == labels[(layer, index)]


def test_edited_labels_are_kept_and_imports_beat_automatic_ones(clean_db: Driver, tmp_path):
    handle = _handle(clean_db)
    world = planted(n_texts=45)
    model_dir, tc_dir = tmp_path / "model", tmp_path / "clt"
    world.model.save_pretrained(model_dir)
    world.tokenizer.save_pretrained(model_dir)
    save_transcoder(world.transcoder, tc_dir)
    (tmp_path / "texts.txt").write_text("\n".join(world.texts) + "\n")
    build = [
        "catalogue", "build", "--model", str(model_dir), "--transcoders", str(tc_dir),
        "--corpus", str(tmp_path / "texts.txt"), "--batch-texts", "8", "--no-progress",
    ]  # fmt: skip
    result = CliRunner().invoke(app, build)
    assert result.exit_code == 0, result.output
    assert (tc_dir / "catalogue" / "catalogue.jsonl").is_file()
    uid = world.transcoder.config.name or "clt"
    city = f"{uid}/{PLANTED_LAYER}/{CITY}"
    [row] = query(clean_db, "MATCH (f:Feature {uid: $u}) RETURN f {.*} AS f", u=city)
    assert row["f"]["label"] == '"dallas" → "austin"' and row["f"]["label_source"] == "auto"
    assert row["f"]["top_logits"][0] == "austin"
    assert json.loads(row["f"]["top_contexts"])[0]["tokens"].count("dallas") >= 1
    assert "quantiles" in row["f"]

    parsed = read_label_file(_csv(tmp_path / "a.csv", [(0, 0, "Dallas"), (0, 1, "broad")]))
    write_labels(handle, uid, parsed.labels)
    set_feature_label(handle, f"{uid}/0/1", "edited by hand")
    again = read_label_file(_csv(tmp_path / "b.csv", [(0, 0, "Dallas, TX"), (0, 1, "imported")]))
    summary = write_labels(handle, uid, again.labels)
    assert (summary.replaced, summary.kept) == (1, 1)
    assert CliRunner().invoke(app, build).exit_code == 0  # a rebuilt catalogue keeps both
    got = query(
        clean_db,
        "MATCH (f:Feature) WHERE f.uid IN $u RETURN f.index AS i, f.label AS label ORDER BY i",
        u=[f"{uid}/0/0", f"{uid}/0/1"],
    )
    assert [r["label"] for r in got] == ["Dallas, TX", "edited by hand"]


def _csv(path: Path, rows: list[tuple[int, int, str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("layer", "index", "label"), *rows])
    return path


def test_unreadable_label_files_name_the_problem(clean_db: Driver, tmp_path: Path):
    bad = tmp_path / "labels.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(app, ["catalogue", "labels", str(bad), "--transcoder", "t"])
    assert result.exit_code == 1 and "bad JSON" in result.output
    (tmp_path / "labels.txt").write_text("0,1,x\n")
    result = CliRunner().invoke(app, ["catalogue", "labels", str(tmp_path / "labels.txt")])
    assert result.exit_code == 1 and ".csv, .json or .jsonl" in result.output
    assert query(clean_db, "MATCH (f:Feature) RETURN count(f) AS n")[0]["n"] == 0
