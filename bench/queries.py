"""Query latency over a corpus of synthetic graphs: p50 / p95 per library query, as users see it.

Writes `--graphs` synthetic graphs of realistic size with the ingest writer (skipping those already
in the database, so a second run only measures), builds a saved query and a supernode on them,
then runs each library query `--repeats` times with rotating parameters through the same runner
the CLI and the dashboard use (safety check, READ transaction, DataFrame), after one warm-up run,
and prints the database hits of its first parameters (PROFILE), a figure the machine's load does
not move.

    .venv/bin/python -m bench.queries --graphs 1000 --edges 5000

Targets (issue 6): token -> logit paths across the corpus under 1 s p95, within one graph under
50 ms p95. Uses the database of the environment (NEO4J_URI or the local server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.synthetic_corpus import write_synthetic_corpus
from circuitmap.synthetic import STATES, SyntheticConfig, synthetic_prompts
from db.connection import Neo4jHandle, open_handle
from db.schema import ensure_schema
from ingest.aggregate import Aggregator
from queries import saved, supernodes
from queries.library import get_query
from queries.runner import run_cypher, run_query

# The forward question: features on the paths city token -> feature -> logit, counted once per
# path (edges are ATTR relationships, docs/schema.md, so this expands from the token).
CITY_FEATURES = """
MATCH (:TokenNode {token: $city})-[:ATTR]->(n:FeatureNode)-[:ATTR]->(:LogitNode)
RETURN n.feature_uid AS feature_uid, count(*) AS n ORDER BY n DESC, feature_uid LIMIT 20
"""
TWO_HOP_GRAPHS = """
MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph {status: 'complete'}) WHERE 'two-hop' IN p.tags
RETURN g.uid AS uid, p.text AS text, p.answer AS answer ORDER BY g.uid LIMIT 200
"""
FREQUENT_FEATURES = """
MATCH (f:Feature) WHERE f.n_graphs IS NOT NULL
RETURN f.uid AS uid ORDER BY f.n_graphs DESC, f.uid LIMIT 50
"""
PAIRS = [(city, capital) for capital, cities in STATES.values() for city in cities]


@dataclass
class Case:
    query: str
    label: str
    params: Callable[[int], dict[str, object]]
    target_ms: float | None = None


def corpus_facts(handle: Neo4jHandle) -> dict[str, object]:
    """Real parameter values: graphs of two-hop prompts, frequent features, a supernode."""
    two_hop = run_cypher(handle, TWO_HOP_GRAPHS, row_cap=0, check=False).frame
    frequent = run_cypher(handle, FREQUENT_FEATURES, row_cap=0, check=False).frame["uid"].tolist()
    city_features = saved.get_saved(handle, "bench-city-features")
    if city_features is None:
        saved.save_query(handle, "bench-city-features", CITY_FEATURES, "", {"city": "dallas"})
    elif city_features.cypher != CITY_FEATURES:  # saved by an older bench on this corpus
        saved.update_query(handle, "bench-city-features", cypher=CITY_FEATURES)
    if supernodes.get_supernode(handle, "bench-dallas") is None:
        supernodes.create_supernode(handle, "bench-dallas", query_name="bench-city-features")
    if supernodes.get_supernode(handle, "bench-frequent") is None:
        supernodes.create_supernode(handle, "bench-frequent", members=frequent[:10])
    return {"two_hop": two_hop, "frequent": frequent}


def cases(facts: dict[str, object]) -> list[Case]:
    two_hop, frequent = facts["two_hop"], facts["frequent"]

    def one(i: int) -> dict[str, object]:
        """The i-th two-hop graph: its uid, city and answer."""
        row = two_hop.iloc[i % len(two_hop)]
        return {"graph": row["uid"], "token": row["text"].split()[-2], "logit": row["answer"]}

    def pair(i: int, **extra: object) -> dict[str, object]:
        city, capital = PAIRS[i % len(PAIRS)]
        return {"token": city, "logit": capital, **extra}

    def feature(i: int) -> dict[str, object]:
        return {"feature": frequent[i % len(frequent)]}

    def graph(i: int) -> dict[str, object]:
        return {"graph": one(i)["graph"]}

    paths = "token_logit_paths"
    return [
        Case(paths, "corpus, city -> capital", pair, 1000),
        Case(paths, "corpus, tag two-hop", lambda i: pair(i, tag="two-hop"), 1000),
        Case(paths, "corpus, 'is' -> capital", lambda i: {**pair(i), "token": "is"}, 1000),
        Case(paths, "one graph, city -> answer", one, 50),
        Case(paths, "one graph, 'the' -> answer", lambda i: {**one(i), "token": "the"}, 50),
        Case("feature_chains", "via frequent feature", lambda i: {"via": frequent[i % 10]}),
        Case(
            "feature_chains",
            "via supernode, from city",
            lambda i: {"via": "bench-dallas", "token": "dallas"},
        ),
        Case("answer_path_features", "tag two-hop, >= 50%", lambda i: {"tag": "two-hop"}),
        Case("feature_neighbourhood", "frequent feature", feature),
        Case("feature_prompts", "frequent feature", feature),
        Case(
            "graph_diff",
            "two two-hop graphs",
            lambda i: {"graph_a": one(i)["graph"], "graph_b": one(i + 1)["graph"]},
        ),
        Case("corpus_stats", "whole corpus", lambda i: {}),
        Case(
            "supernode_paths",
            "corpus, [bench-dallas]",
            lambda i: {"supernodes": ["bench-dallas"], "token": "dallas"},
        ),
        Case("graph_nodes", "one graph", graph),
        Case("graph_edges", "one graph", graph),
        Case("graph_edge_lists", "one graph", graph),
        Case("graph_summary", "one graph", graph),
        Case("graph_search", "tag two-hop", lambda i: {"tag": "two-hop"}),
        Case("feature_card", "frequent feature", feature),
        Case("feature_search", "label text", lambda i: {"text": "layer 1"}),
        Case("features_by_uid", "10 features", lambda i: {"features": frequent[:10]}),
        Case("prompt_tags", "whole corpus", lambda i: {}),
    ]


def measure(handle: Neo4jHandle, case: Case, repeats: int) -> tuple[list[float], int]:
    run_query(handle, case.query, case.params(0), row_cap=0)  # warm-up: plan compiled and cached
    times, rows = [], []
    for i in range(repeats):
        start = time.perf_counter()
        result = run_query(handle, case.query, case.params(i), row_cap=0)
        times.append((time.perf_counter() - start) * 1000)
        rows.append(len(result.frame))
    return times, int(statistics.median(rows))


def db_hits(handle: Neo4jHandle, case: Case) -> int:
    """Database hits of the case's first parameters, from PROFILE (the server's own count)."""
    query = get_query(case.query)
    with handle.session(read=True) as session:
        result = session.run("PROFILE " + query.cypher, query.bind(case.params(0)))
        # Pulled, not discarded: for some plans (an aggregation, then UNWIND and ORDER BY) the
        # server has no profile of a result that was never materialised.
        list(result)
        summary = result.consume()
    return _plan_hits(summary.profile or {})


def _plan_hits(plan: dict) -> int:
    own = int(plan.get("args", {}).get("DbHits", 0))
    return own + sum(_plan_hits(child) for child in plan.get("children", []))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--edges", type=int, default=5000, help="edges per graph")
    parser.add_argument("--features", type=int, default=300, help="feature nodes per graph")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="run only the cases of this query")
    args = parser.parse_args()

    with open_handle() as handle:
        ensure_schema(handle)
        config = SyntheticConfig(n_features=args.features, n_edges=args.edges, seed=args.seed)
        write_synthetic_corpus(handle, synthetic_prompts(args.graphs, seed=args.seed), config)
        # As an ingest run ends: the aggregates count every graph (corpus_facts ranks by them).
        Aggregator(handle).fold_all()
        facts = corpus_facts(handle)
        start = time.perf_counter()
        refreshed = supernodes.refresh_all_supernodes(handle)
        refresh_ms = (time.perf_counter() - start) * 1000
        stats = run_query(handle, "corpus_stats").frame
        graphs, edges = int(stats["graphs_complete"].sum()), int(stats["edges"].sum())
        print(
            f"database: {graphs} complete graphs, {edges:,} edges; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.repeats} runs per case\n"
        )
        header = (
            f"{'query':27s} {'case':29s} {'rows':>6s} {'db hits':>9s} {'p50 ms':>8s} "
            f"{'p95 ms':>8s}  target"
        )
        print(header)
        print("-" * len(header))
        for case in cases(facts):
            if args.only and case.query != args.only:
                continue
            times, rows = measure(handle, case, args.repeats)
            hits = db_hits(handle, case)
            p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
            verdict = ""
            if case.target_ms is not None:
                ok = "ok" if p95 < case.target_ms else "MISSED"
                verdict = f"< {case.target_ms:.0f} ms p95: {ok}"
            print(
                f"{case.query:27s} {case.label:29s} {rows:6d} {hits:9d} {p50:8.1f} {p95:8.1f}  "
                f"{verdict}"
            )
        print(f"\nrefresh_all_supernodes ({len(refreshed)} query-defined): {refresh_ms:.0f} ms")


if __name__ == "__main__":
    main()
