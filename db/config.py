"""Database settings, read from the environment once per call so tests can change them.

NEO4J_URI picks an existing server (Docker, Aura, a team server); without it the project runs its
own local Neo4j under CIRCUITMAP_HOME. Memory defaults are small on purpose: a 2-core laptop or
CI box often runs several of these servers (one per developer or test run) at once. The heap's 1g
is what one graph of a large export (1.5k nodes, 350k edges) needs in a transaction.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where the database is and how the local server is sized."""

    uri: str | None
    user: str
    password: str | None
    database: str
    home: Path
    port: int
    heap: str
    pagecache: str
    tx_timeout: str
    class_sharing: bool

    @property
    def external(self) -> bool:
        """True when NEO4J_URI names a server the project must use and never start or stop."""
        return self.uri is not None

    @property
    def local_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def server_dir(self) -> Path:
        """Everything of the local server: jars, config, data, logs, pid file, password."""
        return self.home / "neo4j"


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"CIRCUITMAP_NEO4J_PORT must be a TCP port number, got {raw!r}")
    return int(raw)


def _jvm_size(name: str, raw: str) -> str:
    if not re.fullmatch(r"\d+[kmgKMG]?", raw):
        raise ValueError(f"{name} must be a JVM memory size such as 512m or 2g, got {raw!r}")
    return raw


_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def _uri(raw: str | None) -> str | None:
    if raw and not raw.startswith(_SCHEMES):
        raise ValueError(
            f"NEO4J_URI must start with bolt:// or neo4j:// (or +s, +ssc), got {raw!r}"
        )
    return raw or None


def load_settings() -> Settings:
    """Settings from the environment (see README, Configuration)."""
    env = os.environ
    home = env.get("CIRCUITMAP_HOME") or "~/.circuitmap"
    return Settings(
        uri=_uri(env.get("NEO4J_URI")),
        user=env.get("NEO4J_USER") or "neo4j",
        password=env.get("NEO4J_PASSWORD") or None,
        database=env.get("NEO4J_DATABASE") or "neo4j",
        home=Path(home).expanduser().resolve(),
        port=_port(env.get("CIRCUITMAP_NEO4J_PORT") or "7687"),
        heap=_jvm_size("CIRCUITMAP_NEO4J_HEAP", env.get("CIRCUITMAP_NEO4J_HEAP") or "1g"),
        pagecache=env.get("CIRCUITMAP_NEO4J_PAGECACHE") or "256m",
        tx_timeout=env.get("CIRCUITMAP_NEO4J_TX_TIMEOUT") or "10m",
        class_sharing=env.get("CIRCUITMAP_NEO4J_CDS", "1") != "0",
    )
