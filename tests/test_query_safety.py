"""User Cypher that could change anything is refused before it runs, and changes nothing.

The write attempts run against a database holding demo graphs (the catalogue and the graphs of
the `demo_sample` prompts, tests/demo_graphs.py), so there is real data for them to damage; the
other checks use a one-prompt database.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from neo4j import Driver

from queries import saved
from queries.runner import QueryFailedError, run_cypher, run_query
from queries.safety import UnsafeQueryError, check_read_only
from tests.demo_graphs import write_sample
from tests.query_helpers import handle_of

WRITES = {
    "create": "CREATE (n:Intruder) RETURN n",
    "merge": "MERGE (n:Intruder {x: 1}) RETURN n",
    "set": "MATCH (p:Prompt) SET p.text = 'hacked' RETURN p",
    "delete": "MATCH (n) DETACH DELETE n",
    "remove": "MATCH (p:Prompt) REMOVE p.text RETURN p",
    "foreach": "MATCH (p:Prompt) FOREACH (x IN [1] | SET p.x = x)",
    "load_csv_file": "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "load_csv_url": "LOAD CSV FROM 'https://example.com/a.csv' AS row RETURN row",
    "load_csv_param": "LOAD CSV FROM $url AS row RETURN row",
    "write_procedure": "CALL db.createLabel('Intruder')",
    "write_procedure_yield": "CALL db.createProperty('intruder') RETURN 1 AS x",
    "dbms_procedure": "CALL dbms.components() YIELD name RETURN name",
    "dbms_mode_procedure": "CALL db.clearQueryCaches()",
    "create_index": "CREATE INDEX intruder FOR (n:Prompt) ON (n.intruder)",
    "create_constraint": "CREATE CONSTRAINT intruder FOR (n:Intruder) REQUIRE n.x IS UNIQUE",
    "drop_constraint": "DROP CONSTRAINT prompt_uid",
    "call_in_transactions": (
        "MATCH (p:Prompt) CALL (p) { SET p.x = 1 } IN TRANSACTIONS OF 10 ROWS RETURN count(*)"
    ),
    "read_in_transactions": "UNWIND [1] AS x CALL (x) { RETURN x AS y } IN TRANSACTIONS RETURN y",
    "terminate": "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "show_transactions": "SHOW TRANSACTIONS",
    "create_user": "CREATE USER intruder SET PASSWORD 'intruder-password'",
    "two_statements": "MATCH (n) RETURN n; MATCH (n) DETACH DELETE n",
    "profile": "PROFILE MATCH (n) DETACH DELETE n",
    "explain_write": "EXPLAIN MATCH (p:Prompt) SET p.text = 'hacked' RETURN p",
    "profile_load_csv": "PROFILE LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "syntax_error": "MATCH (n RETURN n",
    # Aimed at the stored graphs (docs/schema.md).
    "set_edge_weights": "MATCH ()-[r:ATTR]->() SET r.weight = 0.0",
    "set_feature_labels": "MATCH (f:Feature) SET f.label = 'hacked' RETURN count(f)",
    "delete_graphs": "MATCH (g:Graph)-[:HAS_NODE]->(n) DETACH DELETE g, n",
    "delete_edges": "MATCH (:FeatureNode)-[r:INSTANCE_OF]->(:Feature) DELETE r",
    "merge_supernode": "MATCH (f:Feature) MERGE (:Supernode {name: 'x'})-[:GROUPS]->(f)",
    "create_in_subquery": "MATCH (g:Graph) CALL (g) { CREATE (g)-[:OWNED]->(:Intruder) } RETURN g",
    "load_csv_create": "LOAD CSV FROM 'file:///etc/passwd' AS row CREATE (:Intruder {x: row[0]})",
    "drop_index": "DROP INDEX feature_label",
}


def fingerprint(driver) -> tuple:
    """Everything a refused query could have changed: data, labels, properties, schema (the
    catalogue's long top_contexts JSON enters by its length, which keeps this fast)."""
    records, _, _ = driver.execute_query(
        "MATCH (n) WITH count(n) AS nodes, "
        "collect([labels(n), n {.*, top_contexts: size(n.top_contexts)}]) AS props "
        "RETURN nodes, COUNT { ()-->() } AS rels, props, "
        "COLLECT { MATCH ()-[r]->() RETURN [type(r), properties(r)] } AS rel_props, "
        "COLLECT { CALL db.labels() YIELD label RETURN label } AS labels, "
        "COLLECT { CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey } AS keys"
    )
    schema, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS c")
    indexes, _, _ = driver.execute_query("SHOW INDEXES YIELD name RETURN collect(name) AS i")
    row = records[0]
    return (
        row["nodes"],
        row["rels"],
        sorted(map(str, row["props"])),
        sorted(map(str, row["rel_props"])),
        sorted(row["labels"]),
        sorted(row["keys"]),
        sorted(schema[0]["c"]),
        sorted(indexes[0]["i"]),
    )


@pytest.fixture
def seeded(clean_db):
    from db.schema import ensure_schema

    ensure_schema(handle_of(clean_db))
    clean_db.execute_query("CREATE (:Prompt {uid: 'p1', text: 'the capital of texas is'})")
    return clean_db


_DEMO_FINGERPRINT: dict[str, tuple] = {}  # of the demo copy, as last written


@dataclass
class DemoDb:
    driver: Driver
    before: tuple  # its fingerprint when the test starts


@pytest.fixture
def demo_db(request, neo4j_driver, demo_sample) -> DemoDb:
    """A database holding the demo sample. Refused writes change nothing, so the copy is written
    once and again only when another test has changed the database since."""
    written = _DEMO_FINGERPRINT.get("db")
    # Counts first: a database left large by another run is wiped without reading it all.
    before = fingerprint(neo4j_driver) if written and _counts(neo4j_driver) == written[:2] else None
    if before is None or before != written:
        write_sample(request.getfixturevalue("clean_db"), demo_sample)
        before = _DEMO_FINGERPRINT["db"] = fingerprint(neo4j_driver)
    return DemoDb(neo4j_driver, before)


def _counts(driver) -> tuple[int, int]:
    records, _, _ = driver.execute_query(
        "RETURN COUNT { MATCH (n) } AS nodes, COUNT { ()-->() } AS rels"
    )
    return records[0]["nodes"], records[0]["rels"]


@pytest.mark.parametrize("name", sorted(WRITES))
def test_write_attempts_are_refused_on_save_and_change_nothing(demo_db, name):
    driver = demo_db.driver
    assert demo_db.before[0] > 1000  # the catalogue and the graphs are there to be damaged
    with pytest.raises(UnsafeQueryError, match="^refused: "):
        saved.save_query(handle_of(driver), f"attempt-{name}", WRITES[name])
    assert saved.get_saved(handle_of(driver), f"attempt-{name}") is None
    assert fingerprint(driver) == demo_db.before


@pytest.mark.parametrize("name", ["create", "write_procedure", "load_csv_file", "create_index"])
def test_a_tampered_saved_query_is_refused_when_run(seeded, name):
    """A write stored behind the API's back is still checked (and the transaction is READ)."""
    seeded.execute_query(
        "CREATE (:SavedQuery {name: 'tampered', cypher: $cypher, description: '', params: '{}'})",
        cypher=WRITES[name],
    )
    before = fingerprint(seeded)
    with pytest.raises(UnsafeQueryError):
        run_query(handle_of(seeded), "tampered")
    assert fingerprint(seeded) == before


def test_the_read_transaction_refuses_writes_even_unchecked(demo_db):
    for name in ("create", "set_edge_weights", "delete_graphs", "merge_supernode"):
        with pytest.raises(QueryFailedError, match="read access mode"):
            run_cypher(handle_of(demo_db.driver), WRITES[name], check=False)
    assert fingerprint(demo_db.driver) == demo_db.before


EVIL_VALUES = (
    "x' RETURN 1 UNION MATCH (n) DETACH DELETE n //",
    "'}) DETACH DELETE p WITH 1 AS x MATCH (p:Prompt {text: '",
    'the capital of texas is" OR 1=1 //',
    "state ' OR 1=1 SET f.label = 'hacked' //",
)


def test_parameter_values_carrying_cypher_are_only_values(demo_db, demo_sample):
    """Saved and library queries given values that hold Cypher: nothing matches, nothing changes.
    (The saved queries are created and dropped here, so the database is as it was.)"""
    driver = demo_db.driver
    by_text = "MATCH (p:Prompt) WHERE p.text = $text RETURN p.uid AS uid"
    by_label = "MATCH (f:Feature) WHERE f.label STARTS WITH $prefix RETURN f.uid AS uid"
    saved.save_query(handle_of(driver), "by-text", by_text, "", {})
    saved.save_query(handle_of(driver), "by-label", by_label, "", {"prefix": "state "})
    try:
        before = fingerprint(driver)
        for evil in EVIL_VALUES:
            assert run_query(handle_of(driver), "by-text", {"text": evil}).frame.empty
            assert run_query(handle_of(driver), "by-label", {"prefix": evil}).frame.empty
            paths = run_query(
                handle_of(driver), "token_logit_paths", {"token": evil, "logit": evil}
            )
            assert paths.frame.empty
        assert fingerprint(driver) == before
        first = demo_sample.prompts[0]
        found = run_query(handle_of(driver), "by-text", {"text": first.text}).frame
        assert found["uid"].tolist() == [first.uid]
        assert len(run_query(handle_of(driver), "by-label").frame) > 0
    finally:
        saved.delete_query(handle_of(driver), "by-text")
        saved.delete_query(handle_of(driver), "by-label")


def test_read_procedures_and_plain_reads_pass(seeded):
    check_read_only(handle_of(seeded), "CALL db.labels() YIELD label RETURN label")
    check_read_only(handle_of(seeded), "MATCH (p:Prompt) WHERE p.text = $t RETURN p", {"t": "x"})
    check_read_only(
        handle_of(seeded),
        "MATCH (p:Prompt) RETURN p.uid AS u UNION MATCH (g:Graph) RETURN g.uid AS u",
    )


def test_explain_and_profile_of_reads_return_the_plan(seeded):
    """Neo4j takes one execution mode: the check plans the query without the user's keyword."""
    before = fingerprint(seeded)
    explained = run_cypher(handle_of(seeded), "EXPLAIN MATCH (p:Prompt) RETURN p.uid AS uid")
    assert explained.frame["operator"].tolist()[0] == "ProduceResults"
    assert "rows" not in explained.frame  # planned, not run
    profiled = run_cypher(
        handle_of(seeded), "/* why slow? */ profile MATCH (p:Prompt) RETURN p.uid", row_cap=1
    )
    assert profiled.frame["rows"].tolist()[0] == 1 and profiled.frame["db hits"].sum() > 0
    assert any("Prompt" in d for d in profiled.frame["details"])
    for write in ("PROFILE CREATE (n:Intruder)", "EXPLAIN MATCH (p:Prompt) SET p.x = 1"):
        with pytest.raises(UnsafeQueryError, match="^refused: the query writes data"):
            run_cypher(handle_of(seeded), write)
    with pytest.raises(UnsafeQueryError, match="^refused: PROFILE of nothing"):
        check_read_only(handle_of(seeded), "PROFILE ")
    assert fingerprint(seeded) == before


def test_row_cap_cuts_and_says_so(seeded):
    result = run_cypher(handle_of(seeded), "UNWIND range(1, 500) AS x RETURN x", row_cap=25)
    assert result.capped and len(result.frame) == 25
    assert result.frame["x"].tolist() == list(range(1, 26))
    assert "capped" in result.note and "25" in result.note
    whole = run_cypher(handle_of(seeded), "UNWIND range(1, 25) AS x RETURN x", row_cap=25)
    assert not whole.capped and len(whole.frame) == 25 and "capped" not in whole.note


def test_timeout_stops_a_long_query(seeded):
    slow = "UNWIND range(1, 200000000) AS x WITH x WHERE x < 0 RETURN count(x) AS n"
    with pytest.raises(QueryFailedError, match="timeout"):
        run_cypher(handle_of(seeded), slow, timeout_s=0.5)


def test_saved_query_lifecycle(seeded):
    first = saved.save_query(
        handle_of(seeded),
        "prompts-like",
        "MATCH (p:Prompt) WHERE p.text CONTAINS $word RETURN p.uid AS uid",
        "prompts containing a word",
        {"word": "texas"},
    )
    assert first.params == {"word": "texas"}
    assert [q.name for q in saved.list_saved(handle_of(seeded))] == ["prompts-like"]
    assert run_query(handle_of(seeded), "prompts-like").frame["uid"].tolist() == ["p1"]
    assert run_query(handle_of(seeded), "prompts-like", {"word": "ohio"}).frame.empty
    with pytest.raises(ValueError, match="exists"):
        saved.save_query(handle_of(seeded), "prompts-like", "RETURN 1 AS x")
    with pytest.raises(ValueError, match="library query"):
        saved.save_query(handle_of(seeded), "token_logit_paths", "RETURN 1 AS x")
    with pytest.raises(UnsafeQueryError):
        saved.update_query(handle_of(seeded), "prompts-like", cypher=WRITES["set"])
    updated = saved.update_query(
        handle_of(seeded), "prompts-like", description="new", params={"word": "ohio"}
    )
    assert updated.description == "new" and updated.cypher == first.cypher
    assert run_query(handle_of(seeded), "prompts-like").frame.empty
    saved.delete_query(handle_of(seeded), "prompts-like")
    assert saved.get_saved(handle_of(seeded), "prompts-like") is None
    with pytest.raises(LookupError):
        saved.delete_query(handle_of(seeded), "prompts-like")
    with pytest.raises(ValueError, match="name"):
        saved.save_query(handle_of(seeded), "bad name!", "RETURN 1 AS x")


def test_loading_procedure_families_are_refused_whatever_their_mode():
    from queries.safety import _check_procedures

    for name in ("apoc.load.json", "apoc.cypher.doIt", "apoc.export.csv.all", "dbms.listConfig"):
        with pytest.raises(UnsafeQueryError, match=f"procedure {name} "):
            _check_procedures(None, [name])  # refused before the server is asked
