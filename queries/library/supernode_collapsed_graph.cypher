// One graph collapsed to supernodes: member features merged, edges between groups summed.
//
// Every feature node whose catalog feature belongs to a chosen supernode becomes that supernode
// (a feature in several chosen supernodes goes to the first by name); other nodes stay as they are,
// named by node id. Edges between the same two groups are summed; edges inside one supernode are
// dropped. share is |weight| / (sum of |weight| into the target group), as in the path queries.
// @param graph str  The graph uid.
// @param supernodes list[str] = null  Supernode names to collapse; null means all supernodes.
// @column source  Source group: a supernode name or a node id.
// @column target  Target group: a supernode name or a node id.
// @column source_kind  "supernode", or the node's kind (token, feature, error).
// @column target_kind  "supernode", or the node's kind (feature, logit).
// @column weight  Sum of the member edges' weights.
// @column share  |weight| / sum of |weight| into the target group.
// @column n_edges  Number of member edges summed.
WITH COLLECT {
  MATCH (s:Supernode)-[:GROUPS]->(f:Feature)
    WHERE $supernodes IS NULL OR s.name IN $supernodes
  RETURN [f.uid, s.name] ORDER BY s.name
} AS members
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(a)
  WHERE g.status = 'complete'
WITH members, a, a.feature_uid AS a_uid
WITH members, a, head([m IN members WHERE m[0] = a_uid | m[1]]) AS sa
MATCH (a)-[r:ATTR]->(b)
WITH members, a, sa, r.weight AS w, b, b.feature_uid AS b_uid
WITH a, sa, w, b, head([m IN members WHERE m[0] = b_uid | m[1]]) AS sb
WITH coalesce(sa, a.node_id) AS source, coalesce(sb, b.node_id) AS target,
  CASE WHEN sa IS NULL THEN a.kind ELSE 'supernode' END AS source_kind,
  CASE WHEN sb IS NULL THEN b.kind ELSE 'supernode' END AS target_kind,
  sum(w) AS weight, count(*) AS n_edges
  WHERE source <> target
WITH target, collect([source, source_kind, weight, n_edges]) AS inputs, target_kind,
  sum(abs(weight)) AS total
UNWIND inputs AS e
RETURN e[0] AS source, target, e[1] AS source_kind, target_kind, e[2] AS weight,
  abs(e[2]) / total AS share, e[3] AS n_edges
ORDER BY abs(weight) DESC
