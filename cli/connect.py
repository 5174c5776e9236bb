"""The one way a CLI command gets Neo4j: expected failures become one line on stderr and exit 1.

Every command that talks to the database opens it with `connected()`, so an unreachable server, a
refused password, a bad setting (NEO4J_URI, CIRCUITMAP_NEO4J_PORT, ...) or a schema from another
version reads the same everywhere, and not as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from db.connection import Neo4jHandle

errors = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print `error: message` on one line of stderr and exit 1."""
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def connected(verify: bool = True, schema: bool = True, **config: Any) -> Iterator[Neo4jHandle]:
    """A handle (driver and database) from the environment (`config` goes to the driver), closed
    afterwards.

    `verify` checks connectivity and credentials first, so an unreachable server fails at once
    instead of after the driver's retries; `circuitmap ingest` skips it because it waits for
    Neo4j with backoff by design. `schema` (with `verify`) checks the schema version, so a
    database of another version fails with what to do about it; the commands that set the schema
    up skip it. Expected failures inside the block end the command via `fail`.
    """
    from neo4j.exceptions import ClientError, ServiceUnavailable, SessionExpired

    from db.connection import neo4j_uri, open_handle
    from db.jars import DbError
    from db.schema import SchemaVersionError, check_schema
    from queries.runner import QueryFailedError
    from queries.safety import UnsafeQueryError

    try:
        with open_handle(**config) as handle:
            if verify:
                handle.driver.verify_connectivity()
            if verify and schema:
                check_schema(handle)
            yield handle
    except (ServiceUnavailable, SessionExpired, ConnectionError):
        fail(f"no Neo4j answers at {neo4j_uri()}: run `circuitmap db start` or set NEO4J_URI")
    except ClientError as error:  # AuthError, and the rate limit after repeated bad passwords
        if not (error.code or "").startswith("Neo.ClientError.Security."):
            raise
        fail(
            f"Neo4j at {neo4j_uri()} refused the credentials ({error.message}): "
            "check NEO4J_USER / NEO4J_PASSWORD"
        )
    except (
        ValueError,
        LookupError,
        DbError,
        SchemaVersionError,
        UnsafeQueryError,
        QueryFailedError,
    ) as error:
        fail(str(error))
