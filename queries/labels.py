"""Edit a catalog feature's label (the dashboard's feature page writes through here).

The label is copied onto the feature's instances in every graph (`Node.label`), so graph views and
path queries show the new label without a join. An edit sets `label_source` to "edited": edited
labels win over imported and automatic ones (ingest.feature_labels, ingest.catalog)."""

from __future__ import annotations

from db.connection import Neo4jHandle

MAX_LABEL_LENGTH = 500
EDITED = "edited"

SET_LABEL = """
MATCH (f:Feature {uid: $uid})
SET f.label = $label, f.label_source = $source
WITH f
CALL (f) {
  MATCH (n:Node {feature_uid: f.uid})
  SET n.label = $label
  RETURN count(n) AS instances
}
RETURN instances
"""


def set_feature_label(handle: Neo4jHandle, feature_uid: str, label: str) -> int:
    """Set the label; returns how many graph nodes were updated. LookupError for an unknown uid."""
    label = label.strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise ValueError(f"a label has at most {MAX_LABEL_LENGTH} characters, got {len(label)}")
    params = {"uid": feature_uid, "label": label, "source": EDITED}
    records = handle.write(SET_LABEL, params)
    if not records:
        raise LookupError(f"no feature with uid {feature_uid!r}")
    return int(records[0]["instances"])
