"""One Neo4j handle per dashboard process (db.connection reads the environment once), checked on
use: the server answers, and its schema version is this code's (checked once per process)."""

from __future__ import annotations

import streamlit as st
from neo4j.exceptions import ServiceUnavailable

from db import connection
from db.schema import check_schema


class DatabaseUnavailableError(RuntimeError):
    """Neo4j does not answer at the configured address."""


def neo4j_uri() -> str:
    return connection.neo4j_uri()


@st.cache_resource(show_spinner=False)
def _handle() -> connection.Neo4jHandle:
    return connection.open_handle()


@st.cache_resource(show_spinner=False)
def _schema_checked() -> bool:
    """Raises SchemaVersionError (not cached then: the next page run checks again)."""
    check_schema(_handle())
    return True


def get_handle() -> connection.Neo4jHandle:
    """The process's handle, after a connectivity check (cheap once connected)."""
    handle = _handle()
    try:
        handle.driver.verify_connectivity()
    except (ServiceUnavailable, OSError) as error:
        raise DatabaseUnavailableError(str(error)) from None
    _schema_checked()
    return handle
