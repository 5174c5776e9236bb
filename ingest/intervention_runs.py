"""Store the history of interventions run from the dashboard, one node per run.

Stored shape (docs/schema.md, "Saved work"): `(:InterventionRun {uid, graph_uid, summary, plan,
answer, top_before, top_after, p_answer_before, p_answer_after, result, created_at})
-[:ON_GRAPH]->(:Graph)`. `plan` is the JSON of what was intervened (the dashboard's
`app.data.interventions.InterventionPlan`: feature edits, a supernode's scale, injected features
with their donor graphs, the run's settings), `result` the JSON rows of the top tokens before and
after. A run is never updated: re-opening reads it back as it was.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime

from db.connection import Neo4jHandle

CREATE_RUN = """
MATCH (g:Graph {uid: $graph_uid})
CREATE (r:InterventionRun)-[:ON_GRAPH]->(g)
SET r += $props, r.created_at = datetime()
RETURN r.uid AS uid
"""


@dataclass(frozen=True)
class InterventionRunRecord:
    """One intervention run: what was done to which graph's prompt, and what the model said."""

    graph_uid: str
    summary: str  # what was intervened, in words
    plan: str  # JSON: the edits, scales, injections and donors
    result: str  # JSON rows {token, original, intervened}
    top_before: list[str]  # top predictions, most probable first
    top_after: list[str]
    answer: str | None = None
    p_answer_before: float | None = None
    p_answer_after: float | None = None
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    created_at: datetime | None = None

    def properties(self) -> dict[str, object]:
        props = asdict(self)
        props.pop("created_at")
        return props


def record_run(handle: Neo4jHandle, run: InterventionRunRecord) -> str:
    """Store the run on its graph; LookupError when the graph is not in the database."""
    records = handle.write(CREATE_RUN, {"graph_uid": run.graph_uid, "props": run.properties()})
    if not records:
        raise LookupError(f"no graph with uid {run.graph_uid!r}: the run was not recorded")
    return str(records[0]["uid"])
