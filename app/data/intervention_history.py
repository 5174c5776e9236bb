"""The interventions page's history: each run is stored in Neo4j (ingest.intervention_runs) and
read back (queries.intervention_runs), so it survives sessions and can be re-opened."""

from __future__ import annotations

import json

import pandas as pd

from app.data.connection import get_handle
from app.data.interventions import InterventionOutcome, InterventionPlan
from ingest.intervention_runs import InterventionRunRecord, record_run
from queries.intervention_runs import get_run, graph_runs

RESULT_COLUMNS = ["token", "original", "intervened"]


def record(
    graph_uid: str, plan: InterventionPlan, outcome: InterventionOutcome, answer: str | None
) -> InterventionRunRecord:
    """Store the run; returns it as stored (with its uid)."""
    run = InterventionRunRecord(
        graph_uid=graph_uid,
        summary=plan.summary(),
        plan=plan.to_json(),
        result=outcome.table[RESULT_COLUMNS].to_json(orient="records"),
        top_before=outcome.top_before,
        top_after=outcome.top_after,
        answer=answer,
        p_answer_before=outcome.p_answer_before,
        p_answer_after=outcome.p_answer_after,
    )
    record_run(get_handle(), run)
    return run


def runs(graph_uid: str) -> list[InterventionRunRecord]:
    """The graph's runs, newest first (read fresh: the page writes them)."""
    return graph_runs(get_handle(), graph_uid)


def get(uid: str) -> InterventionRunRecord | None:
    return get_run(get_handle(), uid)


def result_table(run: InterventionRunRecord) -> pd.DataFrame:
    """The stored top tokens with their change, as the page shows a fresh result."""
    rows = pd.DataFrame(json.loads(run.result), columns=RESULT_COLUMNS)
    rows["change"] = rows["intervened"] - rows["original"]
    return rows


def plan_of(run: InterventionRunRecord) -> InterventionPlan:
    return InterventionPlan.from_json(run.plan)
