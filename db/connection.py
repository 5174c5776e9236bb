"""The one way every layer gets a Neo4j driver: NEO4J_URI if set, else the local server.

Uses the official `neo4j` driver (py2neo is end-of-life and stops at Neo4j 4.4). A driver is a
connection pool: make one per process and share it; close it (or use `with`) when done.
"""

from __future__ import annotations

from typing import Any

import neo4j
from neo4j import Driver

from db.config import Settings, load_settings
from db.jars import DbError
from db.server import local_password


def neo4j_uri(settings: Settings | None = None) -> str:
    """The Bolt URI the project talks to."""
    settings = settings or load_settings()
    return settings.uri or settings.local_uri


def database_name(settings: Settings | None = None) -> str:
    """The database to use (NEO4J_DATABASE; Community Edition has a single one, `neo4j`)."""
    return (settings or load_settings()).database


def get_driver(settings: Settings | None = None, **config: Any) -> Driver:
    """A driver for the configured server; `config` goes to `GraphDatabase.driver` as is."""
    settings = settings or load_settings()
    password = settings.password if settings.external else local_password(settings)
    if password is None and not settings.external:
        raise DbError(
            "no Neo4j password: run `circuitmap db start` (it creates one), or set NEO4J_PASSWORD"
            " (and NEO4J_URI for an existing server)"
        )
    auth = (settings.user, password) if password is not None else None
    return neo4j.GraphDatabase.driver(
        neo4j_uri(settings), auth=auth, user_agent="circuitmap", **config
    )
