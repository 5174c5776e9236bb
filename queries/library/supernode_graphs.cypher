// The graphs in which a supernode appears: those with a node of at least one of its members.
//
// The Supernodes page lists them and opens its collapsed view on one of them by default.
// @param supernode str  The supernode's name.
// @param limit int = 200  Most rows returned.
// @column graph_uid  The graph.
// @column prompt  Its prompt.
// @column members_present  Distinct member features with a node in the graph.
// @column member_nodes  Nodes of member features in the graph.
MATCH (s:Supernode {name: $supernode})-[:GROUPS]->(f:Feature)
MATCH (n:Node {feature_uid: f.uid})
MATCH (pr:Prompt)-[:HAS_GRAPH]->(g:Graph {uid: n.graph_uid})
  WHERE g.status = 'complete'
RETURN
  g.uid AS graph_uid,
  pr.text AS prompt,
  count(DISTINCT f) AS members_present,
  count(n) AS member_nodes
ORDER BY members_present DESC, member_nodes DESC, graph_uid
LIMIT $limit
