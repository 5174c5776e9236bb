"""The ingest worker: corpus -> claimed prompts -> computed graphs -> Neo4j, without loss.

The main thread claims each prompt (ingest.claims), submits it to an executor (this process, a
process pool or Ray) and hands finished graphs to a writer thread through a small bounded queue,
so writing one graph overlaps computing the next and memory stays flat however long the corpus.
The writer takes every graph that is waiting (up to `batch_graphs`, or `batch_edges` edges) into
one transaction, so a writer that falls behind catches up on commits and round trips. A prompt
whose computation fails is recorded as a failed graph with its error and the run goes on.
Every `fold_every` graphs a folding thread folds the pending contributions into the corpus
aggregates (ingest.aggregate) while writing goes on, and the run ends with everything folded.
When Neo4j is unreachable, every database call waits with exponential backoff, says what it is
waiting for, and carries on when the server is back; a graph is written in one transaction, so
nothing is lost or half-written meanwhile. A heartbeat thread renews this worker's claims while
it holds them. Prompts another live worker holds are revisited at the end, until they are done.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired, TransientError

from circuitmap.records import GraphRecord
from db.connection import Neo4jHandle
from ingest.aggregate import Aggregator, BackgroundFolder
from ingest.claims import BUSY, CLAIMED, DONE, Claims
from ingest.compute import Executor
from ingest.corpus import PromptRecord
from ingest.payload import GraphPayload, failure_payload
from ingest.spec import GraphSpec
from ingest.writer import GraphWriter, WriteResult

UNREACHABLE = (ServiceUnavailable, SessionExpired, ConnectionError)
MAX_LISTED_FAILURES = 1000
T = TypeVar("T")


@dataclass
class WorkerOptions:
    retry_failed: bool = False
    lease_s: float = 120.0  # claim lease; renewed every lease/3 while held
    max_wait_s: float = 3600.0  # give up when Neo4j stays unreachable this long
    max_backoff_s: float = 30.0  # longest pause between two attempts
    busy_poll_s: float = 2.0  # how often to look again at prompts other workers hold
    queue_size: int = 16  # computed graphs waiting for the writer
    batch_graphs: int = 16  # most graphs the writer puts in one transaction
    batch_edges: int = 200_000  # no more graphs join a transaction past this many edges
    fold_every: int = 64  # graphs written between two folds into the corpus aggregates

    def joins_batch(self, graphs: int, edges: int) -> bool:
        """Whether another graph may join a transaction holding `graphs` graphs, `edges` edges."""
        return graphs < self.batch_graphs and edges < self.batch_edges


@dataclass
class Failure:
    line: int
    prompt_uid: str
    error: str

    def __str__(self) -> str:
        return f"line {self.line} ({self.prompt_uid}): {self.error}"


@dataclass
class RunSummary:
    written: int = 0  # new complete graphs
    failed: int = 0  # new failed graphs (errors recorded)
    already_done: int = 0  # complete before this run
    already_failed: int = 0  # failed before this run, not retried
    nodes: int = 0
    edges: int = 0
    seconds: float = 0.0
    write_seconds: float = 0.0
    folded: int = 0  # graphs folded into the corpus aggregates (this run's and leftovers)
    fold_seconds: float = 0.0  # spent folding, beside writing
    failures: list[Failure] = field(default_factory=list)

    @property
    def prompts(self) -> int:
        return self.written + self.failed + self.already_done + self.already_failed

    @property
    def edges_per_s(self) -> float:
        return self.edges / self.seconds if self.seconds else 0.0

    @property
    def prompts_per_s(self) -> float:
        return (self.written + self.failed) / self.seconds if self.seconds else 0.0


class Reporter:
    """Progress hooks; the CLI's rich progress bar implements them, tests use this no-op."""

    def advance(self, status: str, edges: int) -> None:
        pass

    def log(self, message: str) -> None:
        pass


class Worker:
    def __init__(
        self,
        handle: Neo4jHandle,
        executor: Executor,
        *,
        options: WorkerOptions | None = None,
        writer: GraphWriter | None = None,
        reporter: Reporter | None = None,
        where: str = "Neo4j",
    ):
        self.executor = executor
        self.spec: GraphSpec = executor.spec
        self.options = options or WorkerOptions()
        self.writer = writer or GraphWriter(handle)
        self.folder = BackgroundFolder(
            Aggregator(handle),
            lambda fold: self._call(fold, "fold the corpus aggregates"),
        )
        self.claims = Claims(handle, lease_s=self.options.lease_s)
        self.reporter = reporter or Reporter()
        self.where = where
        self.summary = RunSummary()
        self._held: set[str] = set()
        self._unfolded = 0  # graphs this worker wrote since its last fold
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(self.options.queue_size)
        self._fatal: BaseException | None = None
        self._stop = threading.Event()

    def run(self, prompts: Iterable[PromptRecord]) -> RunSummary:
        """Compute and write every prompt's graph; returns the summary (also on interrupt)."""
        start = time.perf_counter()
        threads = [
            threading.Thread(target=self._write_loop, name="writer", daemon=True),
            threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True),
        ]
        for thread in threads:
            thread.start()
        self.folder.start()
        in_flight: deque[tuple[PromptRecord, Future[GraphRecord]]] = deque()
        busy: list[PromptRecord] = []
        try:
            for prompt in prompts:
                self._offer(prompt, in_flight, busy)
            while busy:
                self._drain(in_flight, 0)
                self._wait_writer_idle()
                time.sleep(self.options.busy_poll_s)
                waiting, busy = busy, []
                for prompt in waiting:
                    self._offer(prompt, in_flight, busy)
            self._drain(in_flight, 0)
            self._put(None)
            threads[0].join()
            if self._fatal is None:
                folded = self.folder.finish()
                self.summary.folded, self.summary.fold_seconds = folded.graphs, folded.seconds
        finally:
            self.folder.stop()
            self._stop.set()
            for _, future in in_flight:
                future.cancel()
            with self._lock:
                unwritten = list(self._held)
            if unwritten and self._fatal is None:
                self._call(lambda: self.claims.release(unwritten), "release claims")
            self.summary.seconds = time.perf_counter() - start
        if self._fatal is not None:
            raise self._fatal
        return self.summary

    def _offer(
        self,
        prompt: PromptRecord,
        in_flight: deque[tuple[PromptRecord, Future[GraphRecord]]],
        busy: list[PromptRecord],
    ) -> None:
        uid = self.spec.graph_uid(prompt.uid)
        state = self._call(
            lambda: self.claims.take(uid, self.options.retry_failed), f"claim {prompt.uid}"
        )
        if state == CLAIMED:
            with self._lock:
                self._held.add(uid)
            in_flight.append((prompt, self.executor.submit(prompt.text)))
            self._drain(in_flight, self.executor.capacity - 1)
        elif state == BUSY:
            busy.append(prompt)
        else:
            with self._lock:
                if state == DONE:
                    self.summary.already_done += 1
                else:
                    self.summary.already_failed += 1
            self.reporter.advance("skipped", 0)

    def _drain(self, in_flight: deque[tuple[PromptRecord, Future[GraphRecord]]], keep: int) -> None:
        """Hand the oldest computations to the writer until at most `keep` are in flight."""
        while len(in_flight) > keep:
            prompt, future = in_flight.popleft()
            try:
                graph = future.result()
                self._check_spec(graph)
                self._put((prompt, graph, None))
            except Exception as error:  # any compute error becomes a failed graph
                self._put((prompt, None, _describe(error)))

    def _check_spec(self, graph: GraphRecord) -> None:
        got = GraphSpec.of(graph)
        if got.hash != self.spec.hash:
            raise ValueError(
                f"computed graph has model {got.model!r}, transcoder {got.transcoder!r} and "
                f"settings {got.settings_json}, not the run's ({self.spec.settings_json})"
            )

    def _put(self, item: object) -> None:
        while True:
            if self._fatal is not None:
                raise self._fatal
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _wait_writer_idle(self) -> None:
        while self._queue.unfinished_tasks and self._fatal is None:
            time.sleep(0.05)

    def _write_loop(self) -> None:
        while True:
            items = self._next_batch()
            try:
                work = [item for item in items if item is not None]
                if work:
                    self._write(work)
                if self.folder.error is not None:
                    raise self.folder.error
                if self._unfolded >= self.options.fold_every:
                    self._unfolded = 0
                    self.folder.request()
                if items[-1] is None:
                    return
            except BaseException as error:  # stop the run: the main thread re-raises it
                self._fatal = error
                return
            finally:
                for _ in items:
                    self._queue.task_done()

    def _next_batch(self) -> list:
        """The next computed graph, and whatever else is ready, up to the batch limits."""
        items = [self._queue.get()]
        edges = _edges(items[0])
        while items[-1] is not None and self.options.joins_batch(len(items), edges):
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
            edges += _edges(items[-1])
        return items

    def _write(self, items: list[tuple[PromptRecord, GraphRecord | None, str | None]]) -> None:
        """One transaction for the batch; if the server refuses it, each graph on its own, so
        that one graph it refuses is recorded as failed without failing the others."""
        prepared = [self._prepare(*item) for item in items]
        payloads = [payload for _, payload, _ in prepared]
        what = f"write {len(items)} graph(s) from {items[0][0].uid}"
        try:
            results = self._call(lambda: self.writer.write(payloads), what)
        except Neo4jError as write_error:  # not a lost server: something in the data
            if len(items) > 1:
                for item in items:
                    self._write([item])
                return
            prompt = items[0][0]
            error = f"write failed: {_describe(write_error)}"
            failure = failure_payload(prompt, self.spec, error)
            results = self._call(
                lambda: self.writer.write([failure]), f"record {prompt.uid}'s failure"
            )
            prepared = [(prompt, failure, error)]
        for (prompt, _, error), result in zip(prepared, results, strict=True):
            self._record(prompt, result, error)

    def _prepare(
        self, prompt: PromptRecord, graph: GraphRecord | None, error: str | None
    ) -> tuple[PromptRecord, GraphPayload, str | None]:
        """The graph's payload, or a failure's when it failed to compute or is malformed."""
        if graph is not None:
            try:
                return prompt, self.writer.payload(prompt, graph), None
            except ValueError as bad_graph:
                error = f"write failed: {_describe(bad_graph)}"
        failure = error or "unknown error"
        return prompt, failure_payload(prompt, self.spec, failure), failure

    def _record(self, prompt: PromptRecord, result: WriteResult, error: str | None) -> None:
        with self._lock:
            self._held.discard(result.graph_uid)
            s = self.summary
            s.write_seconds += result.seconds
            if result.status == "written":
                self._unfolded += 1
                s.written += 1
                s.nodes += result.n_nodes
                s.edges += result.n_edges
            elif result.status == "failed":
                s.failed += 1
                if len(s.failures) < MAX_LISTED_FAILURES:
                    s.failures.append(Failure(prompt.line, prompt.uid, error or ""))
            else:
                s.already_done += 1
        self.reporter.advance(result.status, result.n_edges)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.options.lease_s / 3):
            with self._lock:
                held = list(self._held)
            try:
                self.claims.renew(held)
            except (Neo4jError, OSError, ServiceUnavailable) as error:
                self.reporter.log(f"could not renew claims ({_describe(error)}); will retry")

    def _call(self, fn: Callable[[], T], what: str) -> T:
        o = self.options
        return with_backoff(fn, what, o.max_wait_s, self.reporter.log, self.where, o.max_backoff_s)


def with_backoff(
    fn: Callable[[], T],
    what: str,
    max_wait_s: float = 3600.0,
    log: Callable[[str], None] = print,
    where: str = "Neo4j",
    max_backoff_s: float = 30.0,
) -> T:
    """Run a database call; while Neo4j is unreachable, wait with exponential backoff."""
    delay, waited = 1.0, 0.0
    while True:
        try:
            return fn()
        except (*UNREACHABLE, TransientError) as error:
            if _too_big(error):
                raise
            if waited >= max_wait_s:
                raise ServiceUnavailable(
                    f"{where} unreachable for {waited:.0f} s; giving up ({what})"
                ) from error
            log(
                f"waiting for {where} to {what}: {_describe(error)}; "
                f"retry in {delay:.0f} s (waited {waited:.0f} s)"
            )
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, max_backoff_s)


def _edges(item: tuple[PromptRecord, GraphRecord | None, str | None] | None) -> int:
    return 0 if item is None or item[1] is None else item[1].n_edges


def _too_big(error: BaseException) -> bool:
    """A graph too large for the server's transaction memory: retrying will not help."""
    return "MemoryPoolOutOfMemoryError" in str(getattr(error, "code", "") or "")


# The driver's "Couldn't connect to ... (resolved to ...):\nFailed to establish connection to
# ResolvedIPv4Address(...) (reason [Errno 111] Connection refused)": the reason is what matters.
_REASON = re.compile(r"\(reason (?:\[Errno -?\d+\] )?([^)]+)\)")


def _describe(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or ""
    reason = _REASON.search(message)
    first_line = reason.group(1) if reason else message.strip().partition("\n")[0].rstrip(":")
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
