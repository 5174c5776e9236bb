"""One ingest run, wired once: `circuitmap ingest`, `circuitmap demo` and bench/ingest.py call it.

The schema is made sure of (waiting with backoff while Neo4j is away: a worker may start before
it), a writer and a worker are made on the caller's handle and executor, the prompts are computed
and written, and the executor is closed. What callers differ in (the executor, the progress
reporter, the batching and AGG_ATTR options) are arguments; what came of the run is an
`IngestOutcome`, also when it was interrupted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from db.connection import Neo4jHandle
from db.schema import ensure_schema
from ingest.compute import Executor
from ingest.corpus import Corpus, CorpusError, PromptRecord
from ingest.worker import Reporter, RunSummary, Worker, WorkerOptions, with_backoff
from ingest.writer import GraphWriter


@dataclass
class IngestOutcome:
    """What one run did: the worker's summary, the corpus lines it could not read, and whether
    it was interrupted (Ctrl-C or SIGTERM; the summary then covers what was done until then)."""

    summary: RunSummary
    corpus_errors: Sequence[CorpusError] = field(default_factory=list)
    interrupted: bool = False

    @property
    def written(self) -> int:
        return self.summary.written

    @property
    def skipped(self) -> int:
        """Prompts whose graph was there before: complete, or failed and not retried."""
        return self.summary.already_done + self.summary.already_failed

    @property
    def failed(self) -> int:
        """Prompts without a complete graph: failed in this run, or before and not retried."""
        return self.summary.failed + self.summary.already_failed

    @property
    def malformed(self) -> int:
        return len(self.corpus_errors)


def run_ingest(
    handle: Neo4jHandle,
    executor: Executor,
    prompts: Iterable[PromptRecord],
    *,
    options: WorkerOptions | None = None,
    agg_pairs: int = 2000,
    reporter: Reporter | None = None,
    where: str = "Neo4j",
    corpus: Corpus | None = None,
) -> IngestOutcome:
    """Compute and store every prompt's graph; closes `executor`. `corpus` is the file the
    prompts are read from (when `prompts` wraps it), whose malformed lines the outcome lists."""
    reporter = reporter or Reporter()
    worker: Worker | None = None
    try:
        with_backoff(
            lambda: ensure_schema(handle),
            "check the schema",
            log=reporter.log,
            where=where,
        )
        writer = GraphWriter(handle, agg_pairs=agg_pairs)
        worker = Worker(
            handle,
            executor,
            options=options,
            writer=writer,
            reporter=reporter,
            where=where,
        )
        summary = worker.run(prompts)
        interrupted = False
    except KeyboardInterrupt:
        summary = worker.summary if worker is not None else RunSummary()
        interrupted = True
    finally:
        executor.close()
    source = corpus if corpus is not None else prompts
    return IngestOutcome(summary, list(getattr(source, "errors", [])), interrupted)
