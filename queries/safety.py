"""Refuse user Cypher that could change anything, before it runs.

The check asks the server itself: `EXPLAIN` plans the query without running it and reports its type
(r = read only, rw / w = writes, s = schema change) and its plan. On top of the type we reject plan
operators that read the outside world or act on the server (LOAD CSV, `CALL { } IN TRANSACTIONS`,
SHOW / TERMINATE commands) and every procedure call whose registered mode is not READ or whose
name belongs to a family that loads, exports or runs dynamic Cypher. Parameter values are sent as
parameters, never spliced into the text, so a value carrying Cypher is just a string. Queries that
pass still run in a READ transaction (see runner.py), so the server refuses writes a second time.

A query may start with `EXPLAIN` (plan it) or `PROFILE` (run it and measure each operator): users
tune their Cypher with them. The check plans the query without that keyword (Neo4j takes one
execution mode), so a `PROFILE` of a write is refused like the write; `plan_rows` turns the plan or
profile into rows for the runner to show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from neo4j.exceptions import Neo4jError

from db.connection import Neo4jHandle

QUERY_TYPE_MEANING = {"rw": "writes data", "w": "writes data", "s": "changes the schema"}

FORBIDDEN_OPERATORS = {
    "LoadCSV": "loads a file or URL (LOAD CSV)",
    "AdministrationCommand": "is an administration command",
    "TransactionApply": "runs CALL { ... } IN TRANSACTIONS",
    "TransactionForeach": "runs CALL { ... } IN TRANSACTIONS",
}
# SHOW and TERMINATE commands plan as one operator named after the command (ShowProcedures, ...)
# and report query type "r", so they are caught here rather than by the type.
COMMAND_PREFIXES = ("Show", "Terminate")

# Procedure families refused whatever mode they declare (apoc.load.* is registered as READ).
DENIED_PROCEDURES = {
    "apoc.load.": "loads files or URLs",
    "apoc.import.": "loads files or URLs",
    "apoc.export.": "writes files",
    "apoc.cypher.": "runs Cypher given as a string",
    "apoc.periodic.": "runs Cypher given as a string",
    "apoc.trigger.": "installs triggers",
    "apoc.custom.": "installs procedures",
    "apoc.systemdb.": "reads the system database",
    "apoc.util.sleep": "holds the server",
    "dbms.": "is an administration procedure",
}


# The execution-mode keyword, after any whitespace and comments at the start.
_MODE = re.compile(r"\A(?:\s+|//[^\n]*(?:\n|\Z)|/\*.*?\*/)*(EXPLAIN|PROFILE)\b", re.I | re.S)
# Plan columns shown for EXPLAIN / PROFILE, as Neo4j's own plan table names them.
PLAN_COLUMNS = {
    "EstimatedRows": "estimated rows",
    "Rows": "rows",
    "DbHits": "db hits",
    "Memory": "memory (bytes)",
    "PageCacheHits": "page cache hits",
    "PageCacheMisses": "page cache misses",
}


class UnsafeQueryError(ValueError):
    """The query was refused before running; the message says why."""


def check_read_only(
    handle: Neo4jHandle, cypher: str, params: dict[str, object] | None = None
) -> None:
    """Raise UnsafeQueryError unless `cypher` only reads; runs nothing but EXPLAIN.

    Operators and procedures are checked before the query type so that the message names the most
    specific reason (a write procedure, an administration command) rather than just "writes".
    """
    if not cypher.strip():
        raise UnsafeQueryError("refused: the query is empty")
    mode, cypher = execution_mode(cypher)  # plan what EXPLAIN / PROFILE would plan or run
    if mode and not cypher.strip():
        raise UnsafeQueryError(f"refused: {mode} of nothing: give a query after it")
    with handle.session(read=True) as session:
        try:
            summary = session.run("EXPLAIN " + cypher, params or {}).consume()
        except Neo4jError as error:
            reason = (error.message or str(error)).splitlines()[0]
            raise UnsafeQueryError(f"refused: the server cannot plan it: {reason}") from None
        operators = list(_operators(summary.plan or {}))
        _check_operators(operators)
        procedures = sorted(
            {_procedure_name(a) for name, a in operators if name == "ProcedureCall"}
        )
        if procedures:
            _check_procedures(session, procedures)
    query_type = summary.query_type
    if query_type != "r":
        meaning = QUERY_TYPE_MEANING.get(str(query_type), f"has query type {query_type!r}")
        raise UnsafeQueryError(f"refused: the query {meaning}; only read queries may run")


def execution_mode(cypher: str) -> tuple[str | None, str]:
    """(EXPLAIN or PROFILE, the query after it) when the query starts with one of them, else
    (None, the query)."""
    mode = _MODE.match(cypher)
    return (mode.group(1).upper(), cypher[mode.end() :]) if mode else (None, cypher)


def plan_rows(plan: dict) -> list[dict[str, object]]:
    """One row per operator of a plan or profile (`ResultSummary.plan` / `.profile`), top down,
    indented by depth as in Neo4j's plan table; PROFILE adds rows, db hits, memory, page cache."""
    rows = []
    for depth, operator in _walk(plan):
        args = operator.get("args", {})
        row: dict[str, object] = {
            "operator": "  " * depth + operator.get("operatorType", "").split("@")[0],
            "details": args.get("Details", ""),
        }
        row |= {label: args[key] for key, label in PLAN_COLUMNS.items() if key in args}
        rows.append(row)
    return rows


def _walk(plan: dict, depth: int = 0) -> Iterator[tuple[int, dict]]:
    yield depth, plan
    for child in plan.get("children", []):
        yield from _walk(child, depth + 1)


def _operators(plan: dict) -> Iterator[tuple[str, dict]]:
    for _, operator in _walk(plan):
        yield operator.get("operatorType", "").split("@")[0], operator.get("args", {})


def _check_operators(operators: list[tuple[str, dict]]) -> None:
    for name, _ in operators:
        if name in FORBIDDEN_OPERATORS:
            raise UnsafeQueryError(f"refused: the query {FORBIDDEN_OPERATORS[name]}")
        if name.startswith(COMMAND_PREFIXES):
            raise UnsafeQueryError(f"refused: SHOW / TERMINATE commands ({name}) are not allowed")


def _procedure_name(args: dict) -> str:
    signature = str(args.get("Signature") or args.get("Details") or "")
    return signature.split("(")[0].strip()


def _check_procedures(session, procedures: list[str]) -> None:
    for name in procedures:
        for prefix, reason in DENIED_PROCEDURES.items():
            if name.lower().startswith(prefix.lower()):
                raise UnsafeQueryError(f"refused: procedure {name} {reason}")
    rows = session.run(
        "SHOW PROCEDURES YIELD name, mode WHERE name IN $names RETURN name, mode",
        names=procedures,
    )
    modes = {row["name"]: row["mode"] for row in rows}
    for name in procedures:
        mode = modes.get(name)
        if mode is None:
            raise UnsafeQueryError(f"refused: procedure {name} is not a registered procedure")
        if mode != "READ":
            raise UnsafeQueryError(
                f"refused: procedure {name} runs in {mode} mode; only READ procedures may be called"
            )
