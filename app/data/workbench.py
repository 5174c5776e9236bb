"""The query workbench's data access: library and saved queries, running them, saving new ones."""

from __future__ import annotations

from app.data import run
from app.data.connection import get_handle
from queries import saved
from queries.examples import CypherExample, cypher_examples
from queries.library import LibraryQuery, load_library
from queries.runner import QueryResult, run_cypher
from queries.saved import SavedQuery


def library() -> dict[str, LibraryQuery]:
    return load_library()


def examples() -> tuple[CypherExample, ...]:
    """The ad-hoc Cypher examples of docs/schema.md, offered as starting points."""
    return cypher_examples()


def saved_queries() -> dict[str, SavedQuery]:
    return {q.name: q for q in saved.list_saved(get_handle())}


def run_named(name: str, params: dict[str, object], row_cap: int) -> QueryResult:
    """A library or saved query, safety-checked and capped like any user query."""
    return run.result(name, params, row_cap=row_cap)


def run_text(cypher: str, params: dict[str, object], row_cap: int) -> QueryResult:
    """User Cypher: refused before running unless read-only (queries.safety)."""
    return run_cypher(get_handle(), cypher, params, row_cap=row_cap)


def save(name: str, cypher: str, description: str, params: dict[str, object]) -> SavedQuery:
    query = saved.save_query(get_handle(), name, cypher, description, params)
    run.clear()
    return query
