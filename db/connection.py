"""The one way every layer gets a Neo4j driver: NEO4J_URI if set, else the local server.

Uses the official `neo4j` driver (py2neo is end-of-life and stops at Neo4j 4.4). A driver is a
connection pool: make one per process and share it; close it (or use `with`) when done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, LiteralString, TypeVar

import neo4j
from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    Driver,
    ManagedTransaction,
    NotificationMinimumSeverity,
    Record,
    Session,
)

from db.config import Settings, load_settings
from db.jars import DbError
from db.server import local_password

T = TypeVar("T")


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


@dataclass(frozen=True)
class Neo4jHandle:
    """The one way to run Cypher in circuitmap: a driver and the database it talks to.

    Every layer (ingest, queries, app, cli, bench) takes a handle and passes it down, so the
    database is picked once, where the handle is made, and never re-read from the environment.
    Short statements use `read`/`write`; multi-statement work that must be one transaction uses
    `read_transaction`/`write_transaction` (managed: the driver retries transient failures).
    Server notifications are off: circuitmap's own messages are the ones users should see.
    """

    driver: Driver
    database: str

    def session(self, *, read: bool = False, **config: Any) -> Session:
        return self.driver.session(
            database=self.database,
            default_access_mode=READ_ACCESS if read else WRITE_ACCESS,
            notifications_min_severity=NotificationMinimumSeverity.OFF,
            **config,
        )

    def read(self, cypher: LiteralString, params: Mapping[str, Any] | None = None) -> list[Record]:
        """All records of one read-only statement, in a managed READ transaction."""
        with self.session(read=True) as session:
            return session.execute_read(_all_records, cypher, dict(params or {}))

    def write(self, cypher: LiteralString, params: Mapping[str, Any] | None = None) -> list[Record]:
        """All records of one statement, in a managed WRITE transaction."""
        with self.session() as session:
            return session.execute_write(_all_records, cypher, dict(params or {}))

    def read_transaction(self, work: Callable[..., T], *args: Any) -> T:
        with self.session(read=True) as session:
            return session.execute_read(work, *args)

    def write_transaction(self, work: Callable[..., T], *args: Any) -> T:
        with self.session() as session:
            return session.execute_write(work, *args)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Neo4jHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _all_records(tx: ManagedTransaction, cypher: LiteralString, params: dict[str, Any]) -> list:
    return list(tx.run(cypher, params))


def open_handle(settings: Settings | None = None, **config: Any) -> Neo4jHandle:
    """A handle on the configured server and database; close it (or use `with`) when done."""
    settings = settings or load_settings()
    return Neo4jHandle(get_driver(settings, **config), settings.database)
