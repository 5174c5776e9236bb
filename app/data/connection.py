"""One Neo4j driver per dashboard process (db.connection reads the environment), checked on use:
the server answers, and its schema version is this code's (checked once per process)."""

from __future__ import annotations

import streamlit as st
from neo4j import Driver
from neo4j.exceptions import ServiceUnavailable

from db import connection
from db.schema import check_schema


class DatabaseUnavailableError(RuntimeError):
    """Neo4j does not answer at the configured address."""


def neo4j_uri() -> str:
    return connection.neo4j_uri()


@st.cache_resource(show_spinner=False)
def _driver() -> Driver:
    return connection.get_driver()


@st.cache_resource(show_spinner=False)
def _schema_checked() -> bool:
    """Raises SchemaVersionError (not cached then: the next page run checks again)."""
    check_schema(_driver(), connection.database_name())
    return True


def get_driver() -> Driver:
    """The process's driver, after a connectivity check (cheap once connected)."""
    driver = _driver()
    try:
        driver.verify_connectivity()
    except (ServiceUnavailable, OSError) as error:
        raise DatabaseUnavailableError(str(error)) from None
    _schema_checked()
    return driver
