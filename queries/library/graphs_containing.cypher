// The graphs that contain a feature, or any member of a supernode, with how many of them.
//
// The prompt list's "contains feature / supernode" filter: reads the feature nodes through the
// index on Node.feature_uid, no graph is scanned.
// @param feature str = null  A feature uid ("<transcoder>/<layer>/<index>").
// @param supernode str = null  A supernode's name (its member features).
// @column graph_uid  A graph with at least one node of those features.
// @column matched  How many of those features have a node in it.
WITH CASE WHEN $supernode IS NULL THEN [$feature]
  ELSE COLLECT { MATCH (:Supernode {name: $supernode})-[:GROUPS]->(f:Feature) RETURN f.uid }
  END AS uids
UNWIND uids AS uid
MATCH (n:Node {feature_uid: uid})
RETURN n.graph_uid AS graph_uid, count(DISTINCT uid) AS matched
ORDER BY matched DESC, graph_uid
