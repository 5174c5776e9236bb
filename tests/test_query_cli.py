"""`circuitmap query ...` and `circuitmap supernode ...` end to end on a real database."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.planted import STATE_INDEX, feature_uid, planted_graph, store
from tests.query_helpers import handle_of

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def dallas(clean_db):
    from db.schema import ensure_schema

    ensure_schema(handle_of(clean_db))
    return store(clean_db, planted_graph("dallas"))


def test_run_library_query_as_json_csv_and_table(dallas):
    args = ("query", "run", "token_logit_paths", "-p", "token=dallas", "-p", "logit=austin")
    out = cli(*args, "--format", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert rows[0]["graph_uid"] == dallas and rows[0]["hops"] == 3
    many = ("query", "run", "token_logit_paths", "-p", "token=the", "-p", "logit=austin")
    csv = cli(*many, "--format", "csv", "--row-cap", "2")
    lines = csv.stdout.splitlines()
    assert csv.exit_code == 0 and lines[0].startswith("graph_uid,prompt") and len(lines) == 3
    assert "capped" in csv.stderr and '"[""E_' in lines[1]  # lists as JSON
    assert cli(*args).exit_code == 0
    missing = cli("query", "run", "token_logit_paths", "-p", "token=dallas")
    assert missing.exit_code == 1 and "needs parameter 'logit'" in missing.stderr


def test_save_show_run_update_delete(dallas, tmp_path):
    query = tmp_path / "q.cypher"
    query.write_text("MATCH (p:Prompt) WHERE p.text CONTAINS $word RETURN p.text AS text")
    saved = cli("query", "save", "by-word", "--file", str(query), "-p", "word=dallas")
    assert saved.exit_code == 0, saved.output
    assert "by-word" in cli("query", "list").stdout
    assert "CONTAINS $word" in cli("query", "show", "by-word").stdout
    ran = cli("query", "run", "by-word", "--format", "json")
    assert json.loads(ran.stdout)[0]["text"].endswith("dallas is")
    none = cli("query", "run", "by-word", "-p", "word=ohio", "--format", "json")
    assert json.loads(none.stdout) == []
    assert cli("query", "update", "by-word", "--description", "new").exit_code == 0
    assert cli("query", "delete", "by-word").exit_code == 0
    assert cli("query", "show", "by-word").exit_code == 1


def test_write_attempt_is_refused_with_a_clear_message(dallas, tmp_path):
    query = tmp_path / "evil.cypher"
    query.write_text("MATCH (n) DETACH DELETE n")
    out = cli("query", "save", "evil", "--file", str(query))
    assert out.exit_code == 1
    assert out.stderr.strip() == "error: refused: the query writes data; only read queries may run"
    assert "token_logit_paths" in cli("query", "show", "token_logit_paths").stdout


def test_explain_and_profile_of_a_read_query_show_its_plan(dallas, tmp_path):
    """How users tune Cypher: the plan (EXPLAIN) or the measured plan (PROFILE) is the answer."""
    query = tmp_path / "q.cypher"
    query.write_text("// tuning\nPROFILE MATCH (p:Prompt) WHERE p.text CONTAINS $w RETURN p.uid")
    assert cli("query", "save", "tuned", "--file", str(query), "-p", "w=dallas").exit_code == 0
    out = cli("query", "run", "tuned", "--format", "json")
    assert out.exit_code == 0, out.output
    plan = json.loads(out.stdout)
    assert plan[0]["operator"] == "ProduceResults" and plan[0]["rows"] == 1
    assert any("Prompt" in row["details"] and row["db hits"] > 0 for row in plan)
    query.write_text("explain MATCH (p:Prompt) RETURN p.uid")
    assert cli("query", "update", "tuned", "--file", str(query)).exit_code == 0
    plan = json.loads(cli("query", "run", "tuned", "--format", "json").stdout)
    assert plan[0]["operator"] == "ProduceResults" and "rows" not in plan[0]
    query.write_text("PROFILE MATCH (n) DETACH DELETE n")
    out = cli("query", "save", "evil", "--file", str(query))
    assert out.exit_code == 1
    assert out.stderr.strip() == "error: refused: the query writes data; only read queries may run"


def test_supernode_commands(dallas, tmp_path):
    query = tmp_path / "state.cypher"
    query.write_text(
        "MATCH (:TokenNode {token: $city})-[r:ATTR]->(n:FeatureNode) WHERE r.weight > 2 "
        "RETURN DISTINCT n.feature_uid AS feature_uid"
    )
    assert (
        cli("query", "save", "state-of", "--file", str(query), "-p", "city=dallas").exit_code == 0
    )
    made = cli("supernode", "create", "state", "-q", "state-of", "--description", "the state")
    assert made.exit_code == 0 and "1 feature" in made.stdout
    assert "state-of" in cli("supernode", "list").stdout
    shown = cli("supernode", "show", "state", "--history")
    assert feature_uid(0, STATE_INDEX["texas"]) in shown.stdout
    assert cli("supernode", "refresh", "--all").stdout.strip() == "state: +0 -0"
    collapsed = cli("supernode", "collapse", dallas, "--format", "json")
    assert any(e["source"] == "state" for e in json.loads(collapsed.stdout))
    out = tmp_path / "graph.json"
    assert cli("supernode", "export", dallas, "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["qParams"]["supernodes"] == [["state", "0_101_7"]]
    assert cli("supernode", "delete", "state").exit_code == 0
    assert cli("supernode", "show", "state").exit_code == 1


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("query", "list"), {"NEO4J_URI": "bolt://127.0.0.1:1"}, "no Neo4j answers"),
        (("supernode", "list"), {"NEO4J_URI": "bolt://127.0.0.1:1"}, "no Neo4j answers"),
        (("db", "init"), {"NEO4J_URI": "bolt://127.0.0.1:1"}, "no Neo4j answers"),
        (("query", "list"), {"NEO4J_URI": "http://x"}, "NEO4J_URI must start with"),
        (("query", "list"), {"NEO4J_USER": "nobody"}, "refused the credentials"),
        (("import", "none.json"), {"NEO4J_USER": "nobody"}, "refused the credentials"),
        (("ingest", "{corpus}", "--compute", "synthetic"), {"NEO4J_USER": "nobody"}, "refused"),
    ],
)
def test_connection_problems_are_one_line_errors(neo4j_driver, tmp_path, args, env, says):
    """Unreachable, misconfigured or refused: every command says so in one line and exits 1."""
    from db.connection import neo4j_uri

    corpus = tmp_path / "c.txt"
    corpus.write_text("the capital of texas is\n")
    env = {"NEO4J_URI": neo4j_uri(), "NEO4J_PASSWORD": "wrong", **env}  # user nobody: no lockout
    out = runner.invoke(app, [a.format(corpus=corpus) for a in args], env=env)
    assert out.exit_code == 1, out.output
    assert out.stderr.startswith("error: ") and says in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_ingest_refreshes_query_defined_supernodes(clean_db, tmp_path):
    from queries.saved import save_query
    from queries.supernodes import create_supernode, get_supernode

    save_query(
        handle_of(clean_db), "layer-0", "MATCH (f:Feature {layer: 0}) RETURN f.uid AS feature_uid"
    )
    create_supernode(handle_of(clean_db), "early", query_name="layer-0")
    assert get_supernode(handle_of(clean_db), "early").members == []
    corpus = tmp_path / "c.txt"
    corpus.write_text("the capital of texas is\ndallas is in\n")
    sets = ("--set", "n_features=40", "--set", "n_edges=600")
    out = cli("ingest", str(corpus), "--compute", "synthetic", *sets)
    assert out.exit_code == 0, out.output
    assert "refreshed 1 query-defined supernodes" in out.stdout
    assert len(get_supernode(handle_of(clean_db), "early").members) > 0
