"""Stable identities: prompt uids and graph uids.

A graph is identified by its prompt and by everything that shapes it (model, transcoder, generation
and pruning settings), so re-ingesting a corpus finds its graphs again, and a changed setting makes
new graphs beside the old ones instead of overwriting them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from circuitmap.records import GraphRecord


def prompt_uid(text: str) -> str:
    """The uid of a prompt that has no id of its own."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no whitespace: equal settings give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# Settings that change how a graph is computed but not the graph itself: left out of the hash, so
# moving a corpus from CPU to GPU (or another batch size) does not recompute it.
EXECUTION_ONLY = ("batch_size", "device")


@dataclass
class GraphSpec:
    """What a graph is computed with; `hash` names it within a prompt."""

    model: str
    transcoder: str
    settings: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, graph: GraphRecord) -> GraphSpec:
        return cls(model=graph.model, transcoder=graph.transcoder, settings=dict(graph.settings))

    @property
    def settings_json(self) -> str:
        return canonical_json(self.settings)

    @property
    def hash(self) -> str:
        settings = {k: v for k, v in self.settings.items() if k not in EXECUTION_ONLY}
        key = canonical_json(
            {"model": self.model, "transcoder": self.transcoder, "settings": settings}
        )
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]

    def graph_uid(self, prompt_uid: str) -> str:
        return f"{prompt_uid}:{self.hash}"
