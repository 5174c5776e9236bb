"""The Neo4j schema of docs/schema.md: constraints and indexes, and the recorded schema version.

`ensure_schema` is idempotent (every statement is `IF NOT EXISTS`), so `circuitmap db init`, the
worker and the tests can all call it. `check_schema` guards readers and writers against a database
written by a different schema version.
"""

from __future__ import annotations

from db.connection import Neo4jHandle

SCHEMA_VERSION = 3
SCHEMA_NAME = "circuitmap"

CONSTRAINTS = (
    ("model_uid", "Model", "n.uid"),
    ("transcoder_uid", "Transcoder", "n.uid"),
    ("feature_uid", "Feature", "n.uid"),
    ("feature_number", "Feature", "n.number"),  # given by ingest.aggregate; keys AGG_ATTR pairs
    ("prompt_uid", "Prompt", "n.uid"),
    ("graph_uid", "Graph", "n.uid"),
    ("node_key", "Node", "(n.graph_uid, n.node_id)"),
    ("node_position", "Node", "(n.graph_uid, n.idx)"),  # edges name their sources by idx
    ("claim_uid", "Claim", "n.uid"),
    ("pending_aggregate_graph", "PendingAggregate", "n.graph_uid"),
    ("aggregate_lock_name", "AggregateLock", "n.name"),
    ("saved_query_name", "SavedQuery", "n.name"),
    ("supernode_name", "Supernode", "n.name"),
    ("validation_uid", "Validation", "n.uid"),
    ("validation_result_uid", "ValidationResult", "n.uid"),
    ("intervention_run_uid", "InterventionRun", "n.uid"),
    ("schema_info_name", "SchemaInfo", "n.name"),
)

# Relationship constraints: (name, type, property).
RELATIONSHIP_CONSTRAINTS = (("agg_attr_pair", "AGG_ATTR", "pair"),)

RANGE_INDEXES = (
    ("token_node_token", "TokenNode", "token"),  # queries/: input tokens by text
    ("logit_node_token", "LogitNode", "token"),  # queries/: output logits by token
    ("node_feature_uid", "Node", "feature_uid"),
    ("graph_status", "Graph", "status"),
    ("graph_prompt_uid", "Graph", "prompt_uid"),
    ("feature_transcoder_uid", "Feature", "transcoder_uid"),
    ("prompt_tags", "Prompt", "tags"),
    ("intervention_run_graph", "InterventionRun", "graph_uid"),  # a graph's run history
)

TEXT_INDEXES = (("feature_label", "Feature", "label"),)

# Neo4j creates a relationship-type lookup index in every new database. Each relationship written
# (HAS_NODE, INSTANCE_OF, AGG_ATTR) would update it, and no query of ours needs it: they all
# expand from nodes found by label or property. `ensure_schema` drops it.
RELATIONSHIP_LOOKUP = (
    "SHOW INDEXES YIELD name, type, entityType"
    " WHERE type = 'LOOKUP' AND entityType = 'RELATIONSHIP' RETURN name"
)
DROP_INDEX = "DROP INDEX $name IF EXISTS"
AWAIT_INDEXES = "CALL db.awaitIndexes(300)"
READ_VERSION = "MATCH (s:SchemaInfo {name: $name}) RETURN s.version AS version"
RECORD_VERSION = "MERGE (s:SchemaInfo {name: $name}) ON CREATE SET s.version = $version"
HAS_GRAPHS = "MATCH (g:Graph) RETURN count(g) > 0 AS has_graphs"


class SchemaVersionError(RuntimeError):
    """The database was written by a different schema version than this code expects."""


def schema_statements() -> list[str]:
    """Every DDL statement of the schema, each safe to run again."""
    statements = [
        f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE {key} IS UNIQUE"
        for name, label, key in CONSTRAINTS
    ]
    statements += [
        f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR ()-[r:{kind}]-() REQUIRE r.{prop} IS UNIQUE"
        for name, kind, prop in RELATIONSHIP_CONSTRAINTS
    ]
    statements += [
        f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
        for name, label, prop in RANGE_INDEXES
    ]
    statements += [
        f"CREATE TEXT INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
        for name, label, prop in TEXT_INDEXES
    ]
    return statements


def database_version(handle: Neo4jHandle) -> int | None:
    """The schema version recorded in the database, or None when none is recorded."""
    records = handle.read(READ_VERSION, {"name": SCHEMA_NAME})
    return records[0]["version"] if records else None


def ensure_schema(handle: Neo4jHandle) -> int:
    """Create the constraints and indexes, wait until they are online, record the version."""
    found = database_version(handle)
    if found is not None and found != SCHEMA_VERSION:
        raise SchemaVersionError(_mismatch(found))
    for statement in schema_statements():
        handle.write(statement)
    for record in handle.read(RELATIONSHIP_LOOKUP):
        handle.write(DROP_INDEX, {"name": record["name"]})
    handle.read(AWAIT_INDEXES)
    handle.write(RECORD_VERSION, {"name": SCHEMA_NAME, "version": SCHEMA_VERSION})
    return SCHEMA_VERSION


def check_schema(handle: Neo4jHandle) -> int | None:
    """Raise SchemaVersionError unless the database matches this code (a fresh database is fine)."""
    found = database_version(handle)
    if found is None:
        if handle.read(HAS_GRAPHS)[0]["has_graphs"]:
            raise SchemaVersionError(
                "database holds circuitmap graphs but no schema version: run `circuitmap db init`"
            )
        return None
    if found != SCHEMA_VERSION:
        raise SchemaVersionError(_mismatch(found))
    return found


def _mismatch(found: object) -> str:
    if isinstance(found, int) and found < SCHEMA_VERSION:
        return (
            f"database schema version is {found}, this code expects {SCHEMA_VERSION}: "
            "run `circuitmap db migrate` (keeps every graph)"
        )
    return (
        f"database schema version is {found}, this code expects {SCHEMA_VERSION}: "
        "use a matching circuitmap version or a fresh database"
    )
