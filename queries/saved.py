"""Users' own Cypher, stored in Neo4j as `(:SavedQuery)` (docs/schema.md) so every tool sees it.

A query is checked by the safety check when it is saved or changed, and again each time it runs
(runner.py), so a stored query cannot become a write later. Names share one namespace with the
library: a saved query cannot shadow a library query.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from neo4j.exceptions import ConstraintError

from db.connection import Neo4jHandle
from queries.library import load_library
from queries.safety import check_read_only

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,99}")

CREATE_SAVED = """
CREATE (q:SavedQuery {name: $name, cypher: $cypher, description: $description, params: $params,
  created_at: datetime(), updated_at: datetime()})
RETURN q
"""
UPDATE_SAVED = """
MATCH (q:SavedQuery {name: $name})
SET q.cypher = $cypher, q.description = $description, q.params = $params, q.updated_at = datetime()
RETURN q
"""
GET_SAVED = "MATCH (q:SavedQuery {name: $name}) RETURN q"
LIST_SAVED = "MATCH (q:SavedQuery) RETURN q ORDER BY q.name"
SUPERNODES_USING = """
MATCH (s:Supernode {query_name: $name}) RETURN s.name AS name ORDER BY name
"""
DELETE_SAVED = "MATCH (q:SavedQuery {name: $name}) DELETE q"


@dataclass
class SavedQuery:
    name: str
    cypher: str
    description: str
    params: dict[str, object]
    created_at: datetime | None = None
    updated_at: datetime | None = None


def validate_name(name: str, kind: str = "query") -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} must start with a letter and use only letters, digits, _ . -"
        )


def save_query(
    handle: Neo4jHandle,
    name: str,
    cypher: str,
    description: str = "",
    params: dict[str, object] | None = None,
) -> SavedQuery:
    """Store a new query after the safety check; an existing name is an error (use update_query)."""
    validate_name(name)
    if name in load_library():
        raise ValueError(f"{name!r} is a library query name; choose another name")
    params = _checked(handle, cypher, params)
    try:
        records = handle.write(
            CREATE_SAVED,
            {
                "name": name,
                "cypher": cypher,
                "description": description,
                "params": json.dumps(params),
            },
        )
    except ConstraintError:
        raise ValueError(f"a saved query named {name!r} exists; use update to change it") from None
    return _from_node(records[0]["q"])


def update_query(
    handle: Neo4jHandle,
    name: str,
    *,
    cypher: str | None = None,
    description: str | None = None,
    params: dict[str, object] | None = None,
) -> SavedQuery:
    """Change the given fields of a saved query; the result must pass the safety check again."""
    current = _require(handle, name)
    new_cypher = current.cypher if cypher is None else cypher
    new_params = _checked(handle, new_cypher, current.params if params is None else params)
    records = handle.write(
        UPDATE_SAVED,
        {
            "name": name,
            "cypher": new_cypher,
            "description": current.description if description is None else description,
            "params": json.dumps(new_params),
        },
    )
    return _from_node(records[0]["q"])


def get_saved(handle: Neo4jHandle, name: str) -> SavedQuery | None:
    records = handle.read(GET_SAVED, {"name": name})
    return _from_node(records[0]["q"]) if records else None


def list_saved(handle: Neo4jHandle) -> list[SavedQuery]:
    records = handle.read(LIST_SAVED)
    return [_from_node(r["q"]) for r in records]


def delete_query(handle: Neo4jHandle, name: str) -> None:
    """Delete a saved query; refused while a supernode is defined by it."""
    _require(handle, name)
    records = handle.read(SUPERNODES_USING, {"name": name})
    if records:
        users = ", ".join(r["name"] for r in records)
        raise ValueError(f"saved query {name!r} defines supernode(s) {users}; delete those first")
    handle.write(DELETE_SAVED, {"name": name})


def _require(handle: Neo4jHandle, name: str) -> SavedQuery:
    found = get_saved(handle, name)
    if found is None:
        raise LookupError(f"no saved query named {name!r}")
    return found


def _checked(
    handle: Neo4jHandle, cypher: str, params: dict[str, object] | None
) -> dict[str, object]:
    params = dict(params or {})
    try:
        json.dumps(params)
    except TypeError as error:
        raise ValueError(f"default parameters must be JSON values: {error}") from None
    check_read_only(handle, cypher, params)
    return params


def _from_node(node) -> SavedQuery:
    return SavedQuery(
        name=node["name"],
        cypher=node["cypher"],
        description=node.get("description") or "",
        params=json.loads(node.get("params") or "{}"),
        created_at=_to_native(node.get("created_at")),
        updated_at=_to_native(node.get("updated_at")),
    )


def _to_native(value):
    return value.to_native() if value is not None else None
