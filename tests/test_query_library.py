"""The query library: each file documents itself, declares exactly its parameters, only reads."""

from __future__ import annotations

import re

import pytest

from queries.library import LibraryQuery, get_query, load_library, parse_query_file
from queries.runner import parse_cli_params
from queries.safety import check_read_only
from tests.query_helpers import handle_of

LIBRARY = load_library()
REQUIRED = {
    "token_logit_paths",
    "feature_chains",
    "answer_path_features",
    "feature_neighbourhood",
    "feature_prompts",
    "graph_diff",
    "corpus_stats",
    "graph_edge_lists",
    "supernode_paths",
    "graph_nodes",
    "graph_edges",
}
PLACEHOLDERS = {"str": "x", "int": 1, "float": 0.5, "bool": True, "list[str]": ["x"]}


def placeholder_params(query: LibraryQuery) -> dict[str, object]:
    return query.bind({p.name: PLACEHOLDERS[p.type] for p in query.params if p.required})


def test_library_holds_the_required_queries():
    assert set(LIBRARY) >= REQUIRED


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_each_query_documents_itself_and_declares_exactly_its_parameters(name):
    query = LIBRARY[name]
    assert query.title and query.columns
    body = "\n".join(line for line in query.cypher.splitlines() if not line.startswith("//"))
    used = set(re.findall(r"\$(\w+)", body))
    assert used == {p.name for p in query.params}, f"{name}: used {used}"
    assert all(p.doc for p in query.params) and all(c.doc for c in query.columns)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_each_query_is_read_only_and_returns_its_documented_columns(neo4j_driver, name):
    query = LIBRARY[name]
    check_read_only(handle_of(neo4j_driver), query.cypher, placeholder_params(query))
    with neo4j_driver.session() as session:
        keys = session.run("EXPLAIN " + query.cypher, placeholder_params(query)).keys()
    assert list(keys) == [c.name for c in query.columns]


def test_the_path_queries_walk_relationships_not_lists():
    """Schema 3: edges are ATTR relationships; no query reads the schema-2 input lists."""
    for name in ("token_logit_paths", "feature_chains", "answer_path_features", "graph_diff"):
        assert ":ATTR]" in LIBRARY[name].cypher
    assert not any(re.search(r"in_nodes|in_weights", q.cypher) for q in LIBRARY.values())


def test_variable_length_patterns_are_bounded():
    for query in LIBRARY.values():
        assert not re.search(r"\*\s*\]|\{\s*\d*\s*,\s*\}|[+*]\s*\(", query.cypher), query.name


def test_binding_checks_names_types_and_required(tmp_path):
    query = get_query("token_logit_paths")
    bound = query.bind({"token": "dallas", "logit": "austin", "max_hops": "3"})
    assert bound["max_hops"] == 3 and bound["min_strength"] == pytest.approx(1e-4)
    assert bound["tag"] is None
    with pytest.raises(ValueError, match="needs parameter 'logit'"):
        query.bind({"token": "dallas"})
    with pytest.raises(ValueError, match="no parameter 'hops'"):
        query.bind({"token": "a", "logit": "b", "hops": 2})
    with pytest.raises(ValueError, match="must be int"):
        query.bind({"token": "a", "logit": "b", "max_hops": 2.5})
    with pytest.raises(LookupError, match="no library query"):
        get_query("nope")
    bad = tmp_path / "bad.cypher"
    bad.write_text("// Title\n// @param x nonsense  doc\n// @column y  doc\nRETURN $x AS y\n")
    with pytest.raises(ValueError, match="unknown type"):
        parse_query_file(bad)


def test_cli_params_are_typed_by_declaration_or_json():
    types = {p.name: p.type for p in get_query("token_logit_paths").params}
    params = parse_cli_params(["token=123", "max_hops=3", "min_strength=1e-3", "tag=null"], types)
    assert params == {"token": "123", "max_hops": 3, "min_strength": 1e-3, "tag": "null"}
    free = parse_cli_params(["a=3", "b=dallas", "c=[1, 2]", "d=null"], {})
    assert free == {"a": 3, "b": "dallas", "c": [1, 2], "d": None}
    assert parse_cli_params(["s=a,b"], {"s": "list[str]"}) == {"s": ["a", "b"]}
    with pytest.raises(ValueError, match="name=value"):
        parse_cli_params(["novalue"], {})
    with pytest.raises(ValueError, match="max_hops"):
        parse_cli_params(["max_hops=three"], types)
