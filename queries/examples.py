"""The ad-hoc Cypher examples of docs/schema.md ("Your own Cypher"), read from the doc itself so
that the doc, the dashboard's workbench (which offers them) and their test cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
SECTION = "## Your own Cypher"
_EXAMPLE = re.compile(r"^### (.+?)\n```cypher\n(.*?)```", re.M | re.S)


@dataclass(frozen=True)
class CypherExample:
    title: str
    cypher: str


def parse_examples(markdown: str) -> list[CypherExample]:
    """Each `### title` of the section followed by a ```cypher block, in order."""
    start = markdown.index(SECTION)
    end = markdown.find("\n## ", start + len(SECTION))
    section = markdown[start : end if end >= 0 else None]
    return [CypherExample(t.strip(), c.strip()) for t, c in _EXAMPLE.findall(section)]


@cache
def cypher_examples() -> tuple[CypherExample, ...]:
    """The examples of docs/schema.md, parsed once per process."""
    return tuple(parse_examples(SCHEMA_DOC.read_text()))
