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
// Each node's group, as [name, kind], is worked out once and collected in idx order; an edge, read
// from its target's inputs (in_nodes, in_weights), finds its source's group there by idx.
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(n)
  WHERE g.status = 'complete'
WITH members, n, n.feature_uid AS uid
WITH n, head([m IN members WHERE m[0] = uid | m[1]]) AS sn
WITH n.in_nodes AS srcs, n.in_weights AS ws,
  CASE WHEN sn IS NULL THEN [n.node_id, n.kind] ELSE [sn, 'supernode'] END AS grp
  ORDER BY n.idx
WITH collect([grp, srcs, ws]) AS rows, collect(grp) AS groups
UNWIND rows AS b
UNWIND range(0, size(b[2]) - 1) AS i
WITH groups[b[1][i]] AS source_group, b[0] AS target_group, b[2][i] AS w
WITH source_group[0] AS source, target_group[0] AS target,
  source_group[1] AS source_kind, target_group[1] AS target_kind,
  sum(w) AS weight, count(*) AS n_edges
  WHERE source <> target
WITH target, collect([source, source_kind, weight, n_edges]) AS inputs, target_kind,
  sum(abs(weight)) AS total
UNWIND inputs AS e
RETURN e[0] AS source, target, e[1] AS source_kind, target_kind, e[2] AS weight,
  abs(e[2]) / total AS share, e[3] AS n_edges
ORDER BY abs(weight) DESC
