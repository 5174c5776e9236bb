"""Run library and saved queries: bound parameters, safety check, READ transaction, timeout, cap.

Everything that executes a query for a user (CLI, dashboard, supernodes) comes through here, so the
same limits apply everywhere. Limits come from the environment:
CIRCUITMAP_QUERY_ROW_CAP (default 10000) and CIRCUITMAP_QUERY_TIMEOUT_S (default 30).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pandas as pd
from neo4j import Query
from neo4j.exceptions import ClientError, Neo4jError
from neo4j.time import Date, DateTime, Duration, Time

from db.connection import Neo4jHandle
from queries import saved
from queries.library import load_library, parse_value, type_name_of
from queries.safety import check_read_only, execution_mode, plan_rows


def default_row_cap() -> int:
    return int(os.environ.get("CIRCUITMAP_QUERY_ROW_CAP", "10000"))


def default_timeout_s() -> float:
    return float(os.environ.get("CIRCUITMAP_QUERY_TIMEOUT_S", "30"))


class QueryFailedError(RuntimeError):
    """The server rejected or aborted the query (syntax, timeout, ...); the message says which."""


@dataclass
class QueryResult:
    frame: pd.DataFrame
    capped: bool
    row_cap: int | None
    elapsed_s: float

    @property
    def note(self) -> str:
        """A one-line human note; says clearly when rows were cut off."""
        rows = len(self.frame)
        if self.capped:
            return f"capped: showing the first {rows} rows (row cap {self.row_cap}); more exist"
        return f"{rows} row{'s' if rows != 1 else ''} in {self.elapsed_s * 1000:.0f} ms"


def run_cypher(
    handle: Neo4jHandle,
    cypher: str,
    params: dict[str, object] | None = None,
    *,
    row_cap: int | None = None,
    timeout_s: float | None = None,
    check: bool = True,
) -> QueryResult:
    """Run one query read-only with a timeout and return at most `row_cap` rows as a DataFrame.

    The query runs as an auto-commit transaction of a READ session (the server refuses writes in
    it) with a server-side timeout. `check=False` skips the EXPLAIN safety check; only code-owned
    queries (the library, the graph reader) use it. A query starting with EXPLAIN or PROFILE
    returns its plan, one row per operator (PROFILE: with rows and db hits), not its rows.
    """
    params = params or {}
    row_cap = default_row_cap() if row_cap is None else row_cap
    timeout_s = default_timeout_s() if timeout_s is None else timeout_s
    if check:
        check_read_only(handle, cypher, params)
    explained = execution_mode(cypher)[0] is not None
    start = time.perf_counter()
    rows: list[dict[str, object]] = []
    capped = False
    try:
        with handle.session(read=True, fetch_size=row_cap + 1 if row_cap else -1) as session:
            result = session.run(Query(cypher, timeout=timeout_s), params)
            columns = list(result.keys())
            for record in result:
                if row_cap and len(rows) >= row_cap:
                    capped = True
                    break
                rows.append({k: _native(v) for k, v in record.items()})
            summary = result.consume() if explained else None  # the rest: PROFILE measures all
    except ClientError as error:
        if "TimedOut" in (error.code or "") or "terminated" in (error.message or "").lower():
            raise QueryFailedError(f"query stopped after the {timeout_s:g} s timeout") from None
        raise QueryFailedError(f"query failed: {error.message}") from None
    except Neo4jError as error:
        raise QueryFailedError(f"query failed: {error.message}") from None
    frame = pd.DataFrame(rows, columns=columns)
    if summary is not None:  # EXPLAIN / PROFILE: the plan (with PROFILE's figures) is the answer
        frame = pd.DataFrame(plan_rows(summary.profile or summary.plan or {}))
        capped = False
    return QueryResult(frame, capped, row_cap or None, time.perf_counter() - start)


def run_query(
    handle: Neo4jHandle,
    name: str,
    params: dict[str, object] | None = None,
    *,
    row_cap: int | None = None,
    timeout_s: float | None = None,
) -> QueryResult:
    """Run a library query or else a saved query, its defaults overridden by `params`."""
    library = load_library()
    if name in library:
        query = library[name]
        # Library queries are code-owned and tested read-only (tests/test_query_library.py), so
        # they skip the EXPLAIN round trip; they still run in a READ session.
        return run_cypher(
            handle,
            query.cypher,
            query.bind(params),
            row_cap=row_cap,
            timeout_s=timeout_s,
            check=False,
        )
    stored = saved.get_saved(handle, name)
    if stored is None:
        raise LookupError(f"no library or saved query named {name!r}")
    bound = {**stored.params, **(params or {})}
    return run_cypher(handle, stored.cypher, bound, row_cap=row_cap, timeout_s=timeout_s)


def param_types(handle: Neo4jHandle, name: str) -> dict[str, str | None]:
    """Declared parameter types of a library query, or the types of a saved query's defaults."""
    library = load_library()
    if name in library:
        return {p.name: p.type for p in library[name].params}
    stored = saved.get_saved(handle, name)
    if stored is None:
        raise LookupError(f"no library or saved query named {name!r}")
    return {key: type_name_of(value) for key, value in stored.params.items()}


def parse_cli_params(pairs: list[str], types: dict[str, str | None]) -> dict[str, object]:
    """`k=v` strings to typed values: by the declared type when known, else parsed as JSON."""
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"parameter {pair!r} is not of the form name=value")
        key = key.strip()
        try:
            params[key] = parse_value(raw, types.get(key))
        except ValueError as error:
            raise ValueError(f"parameter {key!r}: {error}") from None
    return params


def _native(value: object) -> object:
    """Driver temporal types to Python ones, recursively, so pandas and JSON can handle them."""
    if isinstance(value, DateTime | Date | Time):
        return value.to_native()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, list):
        return [_native(v) for v in value]
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    return value
