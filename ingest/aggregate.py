"""Folds the graphs' pending contributions into the catalog and its corpus aggregates
(docs/schema.md).

The writer stores what each complete graph brings to the catalog (its distinct features with
their catalog fields and instances; per feature: instances, best influence and activation,
reached logits; per feature pair: summed weight) as a `(:PendingAggregate)` in the graph's own
transaction. A fold takes pending contributions, any worker's, merges them in memory (a feature
or pair that recurs across graphs is updated once), MERGEs the catalog features, links the
graphs' feature nodes to them (`INSTANCE_OF`), adds to the features' aggregates and the
`AGG_ATTR` relationships and deletes the contributions, in one transaction under a database-wide
lock. So each graph is counted exactly once whichever process folds it, a fold that dies leaves
its contributions pending for the next, and the catalog's nodes, which every graph touches, are
written by one fold at a time and by no graph transaction: graph writers never wait on (or
deadlock with) each other or a fold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from neo4j import ManagedTransaction

from db.connection import Neo4jHandle
from ingest.writer import check_count

LOCK = "MERGE (l:AggregateLock {name: 'corpus'}) SET l.folded_at = timestamp()"
# A contribution whose graph is gone (deleted by hand, say) is deleted without being counted.
PENDING = """
MATCH (p:PendingAggregate)
WITH p ORDER BY p.graph_uid LIMIT $limit
RETURN elementId(p) AS id, p {.*} AS row,
  EXISTS { MATCH (:Graph {uid: p.graph_uid, status: 'complete'}) } AS live
"""
COUNT_PENDING = "MATCH (p:PendingAggregate) RETURN count(p) AS n"
ADD_TO_FEATURES = """
UNWIND $features AS f
MERGE (c:Feature {uid: f.uid})
  ON CREATE SET c.transcoder_uid = f.transcoder, c.layer = f.layer, c.index = f.index,
                c.label = CASE WHEN f.label = '' THEN null ELSE f.label END, c.auto_label = c.label
SET c.n_graphs = coalesce(c.n_graphs, 0) + f.n_graphs,
    c.n_instances = coalesce(c.n_instances, 0) + f.n_instances,
    c.sum_influence = coalesce(c.sum_influence, 0.0) + f.influence,
    c.sum_activation = coalesce(c.sum_activation, 0.0) + f.activation
SET c.mean_influence = c.sum_influence / c.n_graphs,
    c.mean_activation = c.sum_activation / c.n_graphs
RETURN f.uid AS uid, elementId(c) AS id, c.number AS number, c.reached_logits AS tokens,
  c.reached_logit_counts AS counts
"""
# Catalog features get a small integer `number` when first folded (the lock's counter), so that a
# feature pair has an integer key for the AGG_ATTR index.
NUMBER_FEATURES = """
MATCH (l:AggregateLock {name: 'corpus'})
WITH l, coalesce(l.next_number, 0) AS first
SET l.next_number = first + size($ids)
WITH first
UNWIND range(0, size($ids) - 1) AS i
MATCH (c:Feature) WHERE elementId(c) = $ids[i]
SET c.number = first + i
RETURN first, count(c) AS n
"""
SET_REACHED = """
UNWIND $rows AS r
MATCH (c:Feature) WHERE elementId(c) = r.id
SET c.reached_logits = r.tokens, c.reached_logit_counts = r.counts, c.top_reached_logits = r.top
"""
LINK_INSTANCES = """
UNWIND $fids AS id MATCH (f) WHERE elementId(f) = id
WITH collect(f) AS fs
UNWIND $links AS link
UNWIND range(0, size(link.idx) - 1) AS i
MATCH (x:Node) USING INDEX x:Node(graph_uid, idx)
  WHERE x.graph_uid = link.graph AND x.idx = link.idx[i]
WITH x, fs[link.feature[i]] AS c
CREATE (x)-[:INSTANCE_OF]->(c)
RETURN count(*) AS n
"""
# Pairs: the existing ones are found by their key, `pair` = source number * 2^32 + target number,
# through its index (a MERGE per pair scans a popular feature's AGG_ATTR relationships, slower and
# slower as the corpus grows), updated by id, and the rest created. Only folds write AGG_ATTR,
# one at a time, so none can appear in between.
PAIR_KEY_BASE = 2**32
# The hints keep the index seeks in plans made while the database was nearly empty (a cached plan
# that scans every relationship per key takes minutes once graphs' ATTR edges are there).
EXISTING_PAIRS = """
UNWIND $keys AS key
MATCH ()-[r:AGG_ATTR]->() USING INDEX r:AGG_ATTR(pair) WHERE r.pair = key
RETURN key, elementId(r) AS id
"""
UPDATE_PAIRS = """
UNWIND range(0, size($ids) - 1) AS i
MATCH ()-[r:AGG_ATTR]->() WHERE elementId(r) = $ids[i]
SET r.n_graphs = r.n_graphs + $g[i], r.sum_weight = r.sum_weight + $w[i]
RETURN count(*) AS n
"""
CREATE_PAIRS = """
UNWIND $fids AS id MATCH (f) WHERE elementId(f) = id
WITH collect(f) AS fs
UNWIND range(0, size($w) - 1) AS i
WITH fs[$s[i]] AS a, fs[$t[i]] AS b, $k[i] AS key, $w[i] AS w, $g[i] AS n
CREATE (a)-[:AGG_ATTR {pair: key, n_graphs: n, sum_weight: w}]->(b)
RETURN count(*) AS n
"""
# Counted: a contribution that another fold deleted meanwhile fails this fold (the lock makes that
# impossible; the count makes double counting impossible even without it).
DELETE_PENDING = """
UNWIND $ids AS id MATCH (p:PendingAggregate) WHERE elementId(p) = id
DELETE p
RETURN count(*) AS n
"""
PAIRS_PER_STATEMENT = 20_000
TOP_REACHED = 5


@dataclass
class FoldResult:
    graphs: int = 0
    features: int = 0  # catalog features updated
    pairs: int = 0  # AGG_ATTR relationships created or updated
    dropped: int = 0  # contributions of graphs that no longer exist, deleted uncounted
    seconds: float = 0.0

    @property
    def taken(self) -> int:
        return self.graphs + self.dropped

    def add(self, other: FoldResult) -> None:
        self.graphs += other.graphs
        self.dropped += other.dropped
        self.features += other.features
        self.pairs += other.pairs
        self.seconds += other.seconds


@dataclass
class MergedContributions:
    """Several graphs' contributions, one row per distinct feature and per distinct pair."""

    features: list[dict[str, object]] = field(default_factory=list)  # sorted by uid
    reached: list[dict[str, int]] = field(default_factory=list)  # per feature: token -> graphs
    links: list[dict[str, object]] = field(default_factory=list)  # per graph: {graph, idx, feature}
    pair_source: list[int] = field(default_factory=list)  # positions in `features`
    pair_target: list[int] = field(default_factory=list)
    pair_sum: list[float] = field(default_factory=list)
    pair_graphs: list[int] = field(default_factory=list)


def merge_contributions(rows: list[dict]) -> MergedContributions:
    """Add up contributions (the writer's `PendingAggregate` rows) exactly as one-by-one folds
    would: counts and sums add."""
    catalog = {}  # uid -> its catalog fields, from the first graph that has it
    for row in rows:
        for k, uid in enumerate(row["features"]):
            catalog.setdefault(
                uid,
                {
                    "uid": uid,
                    "transcoder": row["transcoder"],
                    "layer": row["layer"][k],
                    "index": row["index"][k],
                    "label": row["label"][k],
                },
            )
    uids = sorted(catalog)
    position = {uid: k for k, uid in enumerate(uids)}
    n = len(uids)
    totals = np.zeros((4, n))  # graphs, instances, influence, activation
    merged = MergedContributions(reached=[{} for _ in uids])
    keys, sums = [], []
    for row in rows:
        at = np.array([position[uid] for uid in row["features"]], dtype=np.int64)
        merged.links.append(
            {
                "graph": row["graph_uid"],
                "idx": row["instance_idx"],
                "feature": at[np.asarray(row["instance_feature"], dtype=np.int64)].tolist(),
            }
        )
        totals[0, at] += 1
        totals[1, at] += row["n_instances"]
        totals[2, at] += row["influence"]
        totals[3, at] += row["activation"]
        for k, token in zip(row["reached_feature"], row["reached_token"], strict=True):
            counts = merged.reached[int(at[k])]
            counts[token] = counts.get(token, 0) + 1
        source = at[np.asarray(row["pair_source"], dtype=np.int64)]
        target = at[np.asarray(row["pair_target"], dtype=np.int64)]
        keys.append(source * n + target)
        sums.append(np.asarray(row["pair_sum"], dtype=np.float64))
    merged.features = [
        {
            **catalog[uid],
            "n_graphs": int(totals[0, k]),
            "n_instances": int(totals[1, k]),
            "influence": float(totals[2, k]),
            "activation": float(totals[3, k]),
        }
        for k, uid in enumerate(uids)
    ]
    if not keys:
        return merged
    pairs, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    merged.pair_source = (pairs // max(n, 1)).tolist()
    merged.pair_target = (pairs % max(n, 1)).tolist()
    merged.pair_sum = np.bincount(inverse, np.concatenate(sums), len(pairs)).tolist()
    merged.pair_graphs = np.bincount(inverse, minlength=len(pairs)).tolist()
    return merged


class Aggregator:
    """Folds pending contributions; any number of processes may fold at once (they take turns)."""

    def __init__(self, handle: Neo4jHandle, max_graphs: int = 256, max_rows: int = 50_000):
        self.handle = handle
        self.max_graphs = max_graphs  # most contributions in one fold transaction
        # ... and no more once they hold this many pair and instance rows: what a fold writes must
        # fit the server's transaction memory beside the graph writes going on meanwhile (the
        # limit is for all transactions together: 70% of the heap, 716 MiB on the local server)
        self.max_rows = max_rows

    def pending(self) -> int:
        return self.handle.read(COUNT_PENDING)[0]["n"]

    def fold(self) -> FoldResult:
        """Fold the oldest pending contributions (one transaction); none taken when none wait."""
        start = time.perf_counter()
        result = self.handle.write_transaction(self._fold)
        result.seconds = time.perf_counter() - start
        return result

    def fold_all(self) -> FoldResult:
        """Fold until nothing is pending (contributions written meanwhile included)."""
        total = FoldResult()
        while True:
            result = self.fold()
            total.add(result)
            if not result.taken:
                return total

    def _fold(self, tx: ManagedTransaction) -> FoldResult:
        tx.run(LOCK).consume()
        taken, rows, size = [], [], 0
        for record in tx.run(PENDING, limit=self.max_graphs):
            row = record["row"]
            grows = len(row["pair_sum"]) + len(row["instance_idx"]) if record["live"] else 0
            if rows and size + grows > self.max_rows:
                break
            taken.append(record["id"])
            if record["live"]:
                rows.append(row)
                size += grows
        if not taken:
            return FoldResult()
        deleted = tx.run(DELETE_PENDING, ids=taken).single(strict=True)["n"]
        check_count(deleted, len(taken), "pending contributions folded")
        merged = merge_contributions(rows)
        by_uid = {r["uid"]: r for r in tx.run(ADD_TO_FEATURES, features=merged.features)}
        check_count(len(by_uid), len(merged.features), "catalog features")
        found = [by_uid[f["uid"]] for f in merged.features]
        numbers = [record["number"] for record in found]
        unnumbered = [k for k, number in enumerate(numbers) if number is None]
        if unnumbered:
            ids = [found[k]["id"] for k in unnumbered]
            given = tx.run(NUMBER_FEATURES, ids=ids).single(strict=True)
            check_count(given["n"], len(ids), "feature numbers")
            for i, k in enumerate(unnumbered):
                numbers[k] = given["first"] + i
        reached = [
            _reached_row(record, counts)
            for record, counts in zip(found, merged.reached, strict=True)
            if counts
        ]
        tx.run(SET_REACHED, rows=reached).consume()
        fids = [record["id"] for record in found]
        n = tx.run(LINK_INSTANCES, fids=fids, links=merged.links).single(strict=True)["n"]
        check_count(n, sum(len(link["idx"]) for link in merged.links), "feature instances")
        self._add_to_pairs(tx, merged, fids, numbers)
        dropped = len(taken) - len(rows)
        return FoldResult(len(rows), len(merged.features), len(merged.pair_sum), dropped)

    def _add_to_pairs(
        self,
        tx: ManagedTransaction,
        merged: MergedContributions,
        fids: list[str],
        numbers: list[int],
    ) -> None:
        keys = [
            numbers[s] * PAIR_KEY_BASE + numbers[t]
            for s, t in zip(merged.pair_source, merged.pair_target, strict=True)
        ]
        existing: dict[int, str] = {}
        for chunk in _chunks({"keys": keys}):
            existing.update((r["key"], r["id"]) for r in tx.run(EXISTING_PAIRS, **chunk))
        old = [i for i, key in enumerate(keys) if key in existing]
        new = [i for i, key in enumerate(keys) if key not in existing]

        def pick(values: list, at: list[int]) -> list:
            return [values[i] for i in at]

        update = {
            "ids": [existing[keys[i]] for i in old],
            "w": pick(merged.pair_sum, old),
            "g": pick(merged.pair_graphs, old),
        }
        create = {
            "s": pick(merged.pair_source, new),
            "t": pick(merged.pair_target, new),
            "k": pick(keys, new),
            "w": pick(merged.pair_sum, new),
            "g": pick(merged.pair_graphs, new),
        }
        for query, lists, extra in (
            (UPDATE_PAIRS, update, {}),
            (CREATE_PAIRS, create, {"fids": fids}),
        ):
            for chunk in _chunks(lists):
                n = tx.run(query, **chunk, **extra).single(strict=True)["n"]
                check_count(n, len(chunk["w"]), "aggregate edges")


def _chunks(lists: dict[str, list]) -> list[dict[str, list]]:
    """Parallel lists cut into statements of at most PAIRS_PER_STATEMENT rows."""
    size = len(next(iter(lists.values())))
    return [
        {name: values[lo : lo + PAIRS_PER_STATEMENT] for name, values in lists.items()}
        for lo in range(0, size, PAIRS_PER_STATEMENT)
    ]


def _reached_row(record, new: dict[str, int]) -> dict[str, object]:
    """A feature's reached-logit counts with `new` (token -> graphs) added, tokens in sorted
    order (the same lists however the graphs were grouped into folds), the top ones apart."""
    counts = dict(zip(record["tokens"] or [], record["counts"] or [], strict=True))
    for token, graphs in new.items():
        counts[token] = counts.get(token, 0) + graphs
    tokens = sorted(counts)
    return {
        "id": record["id"],
        "tokens": tokens,
        "counts": [counts[t] for t in tokens],
        "top": sorted(tokens, key=lambda t: -counts[t])[:TOP_REACHED],
    }


class BackgroundFolder:
    """Folds in a thread of its own while graphs are being written, so that folding (the
    server's work on other rows) overlaps writing instead of pausing it.

    `request()` asks it to fold everything pending (the writer calls it every so many graphs);
    `finish()` folds whatever is left and returns the total; `stop()` abandons the thread (what it
    did not fold stays pending for the next fold). `call` wraps each fold, e.g. to wait out a
    lost server.
    An error in a fold is kept in `error` and re-raised by `finish()`.
    """

    def __init__(
        self,
        aggregator: Aggregator,
        call: Callable[[Callable[[], FoldResult]], FoldResult] = lambda fold: fold(),
    ):
        self.aggregator = aggregator
        self.call = call
        self.total = FoldResult()
        self.error: BaseException | None = None
        self._wanted = threading.Event()
        self._finishing = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="folder", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> BackgroundFolder:
        self._thread.start()
        return self

    def request(self) -> None:
        self._wanted.set()

    def finish(self) -> FoldResult:
        self._finishing.set()
        self._wanted.set()
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.total

    def stop(self) -> None:
        self._stopped.set()
        self._wanted.set()

    def _loop(self) -> None:
        try:
            while not self._stopped.is_set():
                self._wanted.wait()
                self._wanted.clear()
                if self._stopped.is_set():
                    return
                finishing = self._finishing.is_set()
                self._add(self.call(self.aggregator.fold_all))
                if finishing:
                    return
        except BaseException as error:  # kept for finish() and for the owner to check
            self.error = error

    def _add(self, result: FoldResult) -> None:
        with self._lock:
            self.total.add(result)
