"""The graph view's shareable state and its URL encoding.

  graph=<graph uid>  sel=<node id>  pin=<id>,<id>  sn=<JSON [[name, [ids]], ...]>  thr=<0..1>

Node ids never contain commas (records.py), so pins are a plain list; supernode names are free text,
so groups travel as JSON. Bad values in a hand-edited URL are dropped, not fatal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_THRESHOLD = 1.0


@dataclass
class GraphViewState:
    graph: str = ""
    selected: str = ""
    pinned: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD

    def to_params(self) -> dict[str, str]:
        """Query params; defaults are left out so URLs stay short."""
        params = {"graph": self.graph} if self.graph else {}
        if self.selected:
            params["sel"] = self.selected
        if self.pinned:
            params["pin"] = ",".join(self.pinned)
        if self.groups:
            params["sn"] = json.dumps(
                [[k, v] for k, v in self.groups.items()], separators=(",", ":")
            )
        if self.threshold != DEFAULT_THRESHOLD:
            params["thr"] = f"{self.threshold:g}"
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> GraphViewState:
        return cls(
            graph=params.get("graph", ""),
            selected=params.get("sel", ""),
            pinned=_pins(params.get("pin", "")),
            groups=_groups(params.get("sn", "")),
            threshold=_threshold(params.get("thr", "")),
        )

    def toggle_pin(self, node_id: str) -> None:
        if node_id in self.pinned:
            self.pinned.remove(node_id)
            for members in self.groups.values():
                if node_id in members:
                    members.remove(node_id)
            self.groups = {k: v for k, v in self.groups.items() if v}
        else:
            self.pinned.append(node_id)

    def group(self, name: str, members: list[str]) -> None:
        """Group pinned nodes under `name`; a node belongs to at most one group."""
        name = name.strip()
        if not name:
            raise ValueError("a supernode needs a name")
        if not members:
            raise ValueError("pick at least one pinned node to group")
        chosen = set(members)
        self.groups = {k: [m for m in v if m not in chosen] for k, v in self.groups.items()}
        self.groups[name] = [m for m in self.pinned if m in chosen]
        self.groups = {k: v for k, v in self.groups.items() if v}

    def ungroup(self, name: str) -> None:
        self.groups.pop(name, None)


def _pins(raw: str) -> list[str]:
    return list(dict.fromkeys(p for p in raw.split(",") if p))


def _groups(raw: str) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {str(name): [str(m) for m in members] for name, members in data if members}
    except (ValueError, TypeError):
        return {}


def _threshold(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_THRESHOLD
    return value if 0 < value <= 1 else DEFAULT_THRESHOLD
