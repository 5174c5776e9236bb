"""Shared pieces of the query tests."""

from __future__ import annotations

from neo4j import Driver

from db.connection import Neo4jHandle, database_name


def handle_of(driver: Driver) -> Neo4jHandle:
    """The test session's driver as the handle the query layer takes (the tests' database)."""
    return Neo4jHandle(driver, database_name())
