"""The query library: `queries/library/*.cypher`, each documented by its own header comment block.

A query file starts with `//` comment lines: a one-line title, a free-text description, then one
`@param NAME TYPE [= DEFAULT]  doc` line per parameter (DEFAULT is JSON; no default means required)
and one `@column NAME  doc` line per result column. The header is the single source of truth for
the CLI, the dashboard's forms and the docs, so a query and its documentation cannot drift apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

LIBRARY_DIR = Path(__file__).with_name("library")

PARAM_TYPES = ("str", "int", "float", "bool", "list[str]")

_PARAM_LINE = re.compile(r"@param\s+(\w+)\s+([\w\[\]]+)(?:\s*=\s*(\S+))?\s*(.*)")
_COLUMN_LINE = re.compile(r"@column\s+(\w+)\s*(.*)")


@dataclass(frozen=True)
class QueryParam:
    name: str
    type: str
    doc: str
    default: object = None
    required: bool = False

    def coerce(self, value: object) -> object:
        """Convert a value (often a CLI string) to this parameter's type; None stays None."""
        if value is None or not isinstance(value, str) or self.type == "str":
            return _check_type(self, value)
        return _check_type(self, parse_value(value, self.type))


@dataclass(frozen=True)
class QueryColumn:
    name: str
    doc: str


@dataclass(frozen=True)
class LibraryQuery:
    name: str
    title: str
    description: str
    cypher: str
    params: tuple[QueryParam, ...] = field(default_factory=tuple)
    columns: tuple[QueryColumn, ...] = field(default_factory=tuple)

    def defaults(self) -> dict[str, object]:
        return {p.name: p.default for p in self.params if not p.required}

    def bind(self, overrides: dict[str, object] | None = None) -> dict[str, object]:
        """Defaults plus overrides, type-checked; unknown and missing parameters are errors."""
        overrides = dict(overrides or {})
        by_name = {p.name: p for p in self.params}
        unknown = sorted(set(overrides) - set(by_name))
        if unknown:
            raise ValueError(
                f"query {self.name!r} has no parameter {unknown[0]!r} (it takes: "
                f"{', '.join(by_name) or 'none'})"
            )
        bound = {}
        for p in self.params:
            if p.name in overrides:
                bound[p.name] = p.coerce(overrides[p.name])
            elif p.required:
                raise ValueError(f"query {self.name!r} needs parameter {p.name!r} ({p.doc})")
            else:
                bound[p.name] = p.default
        return bound


def parse_value(raw: str, type_name: str | None = None) -> object:
    """Parse a CLI string: by the declared type when known, else as JSON, else as the string."""
    if type_name == "str":
        return raw
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "bool":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"expected true or false, got {raw!r}")
        return lowered in ("true", "1", "yes")
    if type_name == "list[str]":
        stripped = raw.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    if raw == "null":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def type_name_of(value: object) -> str | None:
    """The library type name matching a Python value (None when it has none, e.g. for null)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list[str]"
    return {int: "int", float: "float", str: "str"}.get(type(value))


def _check_type(param: QueryParam, value: object) -> object:
    expected = {"str": str, "int": int, "float": (int, float), "bool": bool, "list[str]": list}
    if value is None:
        return None
    ok = isinstance(value, expected[param.type]) and not (
        param.type in ("int", "float") and isinstance(value, bool)
    )
    if param.type == "list[str]" and ok:
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        raise ValueError(f"parameter {param.name!r} must be {param.type}, got {value!r}")
    return float(value) if param.type == "float" else value


def parse_query_file(path: Path) -> LibraryQuery:
    """Parse one `.cypher` file; a malformed header is a ValueError naming the file and line."""
    text = path.read_text()
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        header.append(line[2:].strip())
    if not header or not header[0]:
        raise ValueError(f"{path.name}: missing title comment on the first line")
    params: list[QueryParam] = []
    columns: list[QueryColumn] = []
    description: list[str] = []
    for line in header[1:]:
        if line.startswith("@param"):
            params.append(_parse_param(path, line))
        elif line.startswith("@column"):
            match = _COLUMN_LINE.fullmatch(line)
            if not match:
                raise ValueError(f"{path.name}: bad column line {line!r}")
            columns.append(QueryColumn(match[1], match[2]))
        elif not params and not columns:
            description.append(line)
    if not columns:
        raise ValueError(f"{path.name}: no @column lines")
    return LibraryQuery(
        name=path.stem,
        title=header[0],
        description="\n".join(description).strip(),
        cypher=text,
        params=tuple(params),
        columns=tuple(columns),
    )


def _parse_param(path: Path, line: str) -> QueryParam:
    match = _PARAM_LINE.fullmatch(line)
    if not match:
        raise ValueError(f"{path.name}: bad param line {line!r}")
    name, type_name, default_raw, doc = match.groups()
    if type_name not in PARAM_TYPES:
        raise ValueError(f"{path.name}: parameter {name!r} has unknown type {type_name!r}")
    if default_raw is None:
        return QueryParam(name, type_name, doc, required=True)
    param = QueryParam(name, type_name, doc)
    return QueryParam(name, type_name, doc, default=param.coerce(json.loads(default_raw)))


@cache
def load_library() -> dict[str, LibraryQuery]:
    """Every library query by name, parsed once per process."""
    return {q.name: q for q in map(parse_query_file, sorted(LIBRARY_DIR.glob("*.cypher")))}


def get_query(name: str) -> LibraryQuery:
    library = load_library()
    if name not in library:
        raise LookupError(f"no library query named {name!r} (known: {', '.join(library)})")
    return library[name]
