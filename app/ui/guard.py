"""Turn the failures a user can cause or meet (Neo4j down, bad input, a failed query) into one clear
message on the page instead of a traceback, both in page bodies and in widget callbacks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

import streamlit as st
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired

from app.data.connection import DatabaseUnavailableError, neo4j_uri
from db.jars import DbError
from db.schema import SchemaVersionError
from queries.runner import QueryFailedError
from queries.safety import UnsafeQueryError

EMPTY_DB_HINT = (
    "The database holds no graphs yet. Ingest a corpus (`circuitmap ingest ...`) or load the demo "
    "(`make demo`), then reload this page."
)
UNREACHABLE = (DatabaseUnavailableError, ServiceUnavailable, SessionExpired, DbError)
EXPECTED = (
    *UNREACHABLE,
    AuthError,
    SchemaVersionError,
    QueryFailedError,
    UnsafeQueryError,
    LookupError,
    ValueError,
)
CALLBACK_ERROR = "cm_callback_error"
P = ParamSpec("P")


def run_page(render: Callable[[], None]) -> None:
    """Run a page body; expected failures become an error box and stop the page."""
    if CALLBACK_ERROR in st.session_state:
        st.error(st.session_state.pop(CALLBACK_ERROR), icon=":material/error:")
    try:
        render()
    except EXPECTED as error:
        st.error(message(error), icon=":material/error:")


def safe_callback(callback: Callable[P, None]) -> Callable[P, None]:
    """A widget callback whose expected failures are shown on the next run of the page."""

    @functools.wraps(callback)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            callback(*args, **kwargs)
        except EXPECTED as error:
            st.session_state[CALLBACK_ERROR] = message(error)

    return wrapper


def message(error: BaseException) -> str:
    """One line for the user, naming the problem."""
    if isinstance(error, UNREACHABLE):
        return (
            f"Neo4j is not reachable at {neo4j_uri()}: start it with `circuitmap db start` "
            f"(or set NEO4J_URI). Details: {_first_line(error)}"
        )
    if isinstance(error, AuthError):
        return f"Neo4j at {neo4j_uri()} refused the credentials: check NEO4J_USER / NEO4J_PASSWORD."
    return _first_line(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
