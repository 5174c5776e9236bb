"""Claims: which worker computes which graph, so that no two workers compute the same one.

A claim is a `(:Claim {uid: <graph uid>, owner, host, pid, expires})` node, taken in a write
transaction that first locks it (MERGE under the unique constraint, then a write), so two workers
can never both hold it. It is deleted in the transaction that writes its graph (or failure), and
renewed by its owner while the graph is computed. A claim may be taken over when it has expired
(its owner stopped renewing: killed, or its machine lost), or at once when its owner ran on this
host and that process no longer exists (a worker restarted after SIGKILL). Lease times come from
the server's clock, so machines with skewed clocks agree. Exactly-once storage does not depend on
claims: the graph's unique uid does that; claims only stop duplicate computation.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from neo4j import ManagedTransaction

from db.connection import Neo4jHandle

LOCK = "MERGE (c:Claim {uid: $uid}) SET c.locked_at = timestamp()"
INSPECT = """
MATCH (c:Claim {uid: $uid})
OPTIONAL MATCH (g:Graph {uid: $uid})
RETURN g.status AS status, c.owner AS owner, c.host AS host, c.pid AS pid,
       c.expires < timestamp() AS expired
"""
TAKE = """
MATCH (c:Claim {uid: $uid})
SET c.owner = $owner, c.host = $host, c.pid = $pid, c.expires = timestamp() + $lease_ms
"""
DROP = "MATCH (c:Claim {uid: $uid}) DELETE c"
RENEW = """
UNWIND $uids AS uid
MATCH (c:Claim {uid: uid}) WHERE c.owner = $owner
SET c.expires = timestamp() + $lease_ms
"""
RELEASE = "UNWIND $uids AS uid MATCH (c:Claim {uid: uid}) WHERE c.owner = $owner DELETE c"

CLAIMED, DONE, FAILED, BUSY = "claimed", "done", "failed", "busy"


@dataclass(frozen=True)
class Owner:
    """This worker: a unique id, plus host and pid so a restart can see its predecessor died."""

    id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> Owner:
        host = socket.gethostname()
        return cls(f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}", host, os.getpid())


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims:
    """Take, renew and release claims for one owner."""

    def __init__(self, handle: Neo4jHandle, owner: Owner | None = None, lease_s: float = 120.0):
        self.handle = handle
        self.owner = owner or Owner.here()
        self.lease_ms = int(lease_s * 1000)

    def take(self, graph_uid: str, retry_failed: bool = False) -> str:
        """CLAIMED (compute it), DONE (complete), FAILED (failed before) or BUSY (someone's)."""
        return self.handle.write_transaction(self._take, graph_uid, retry_failed)

    def _take(self, tx: ManagedTransaction, uid: str, retry_failed: bool) -> str:
        tx.run(LOCK, uid=uid).consume()
        row = tx.run(INSPECT, uid=uid).single(strict=True)
        fresh = row["owner"] is None
        if row["status"] == "complete" or (row["status"] == "failed" and not retry_failed):
            if fresh or row["expired"]:
                tx.run(DROP, uid=uid).consume()
            return DONE if row["status"] == "complete" else FAILED
        if not (fresh or row["owner"] == self.owner.id or row["expired"] or self._orphan(row)):
            return BUSY
        tx.run(
            TAKE,
            uid=uid,
            owner=self.owner.id,
            host=self.owner.host,
            pid=self.owner.pid,
            lease_ms=self.lease_ms,
        ).consume()
        return CLAIMED

    def _orphan(self, row) -> bool:
        """The holder ran on this host and its process is gone."""
        return row["host"] == self.owner.host and not process_alive(int(row["pid"]))

    def renew(self, uids: list[str]) -> None:
        if uids:
            params = {"uids": uids, "owner": self.owner.id, "lease_ms": self.lease_ms}
            self.handle.write(RENEW, params)

    def release(self, uids: list[str]) -> None:
        """Give back claims that will not be written (the worker is stopping)."""
        if uids:
            self.handle.write(RELEASE, {"uids": uids, "owner": self.owner.id})
