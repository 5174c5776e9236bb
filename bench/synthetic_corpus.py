"""Write a synthetic corpus for a benchmark once: prompts whose graph is already complete are
left as they are, so a second run on the same database measures without writing again."""

from __future__ import annotations

import time

from circuitmap.synthetic import SyntheticConfig, SyntheticGraphs
from db.connection import Neo4jHandle
from ingest.corpus import PromptRecord
from ingest.writer import GraphWriter

DONE_PROMPTS = """
MATCH (p:Prompt)-[:HAS_GRAPH]->(:Graph {status: 'complete'}) WHERE p.uid IN $uids
RETURN collect(p.uid) AS done
"""


def write_synthetic_corpus(
    handle: Neo4jHandle, rows: list[dict], config: SyntheticConfig, report_every: int = 50
) -> None:
    """Rows as `circuitmap.synthetic.synthetic_prompts` gives them (id, text, tags, answer)."""
    done = set(handle.read(DONE_PROMPTS, {"uids": [r["id"] for r in rows]})[0]["done"])
    todo = [r for r in rows if r["id"] not in done]
    if not todo:
        print(f"corpus: {len(rows)} graphs already written")
        return
    compute = SyntheticGraphs(config=config, answers={r["text"]: r["answer"] for r in rows})
    writer = GraphWriter(handle)
    start, edges = time.perf_counter(), 0
    for i, row in enumerate(todo, 1):
        prompt = PromptRecord(row["id"], row["text"], list(row["tags"]), row["answer"])
        edges += writer.write_graph(prompt, compute(row["text"])).n_edges
        if i % report_every == 0 or i == len(todo):
            rate = i / (time.perf_counter() - start)
            print(f"  wrote {i}/{len(todo)} graphs ({rate:.1f} graphs/s, {edges:,} edges)")
