// The instances of a set of features in the tagged graphs, most influential first.
UNWIND $uids AS uid
MATCH (n:Node {feature_uid: uid})
  WHERE n.graph_uid IN $graphs
MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph {uid: n.graph_uid})
RETURN uid AS feature_uid, n.graph_uid AS graph_uid, p.text AS prompt, n.node_id AS node_id,
  n.position AS position, n.token AS token, n.activation AS activation,
  n.influence AS influence
ORDER BY influence ASC
LIMIT $limit
