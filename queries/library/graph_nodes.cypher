// Every node of one graph, with its properties, for drawing or exporting the graph.
//
// Rows come in the order tokens, features, errors, logits, then by layer, position and node id.
// @param graph str  The graph uid.
// @column node_id  The node id (Neuronpedia convention, see circuitmap/records.py).
// @column kind  token, feature, error or logit.
// @column layer  Layer (-1 for tokens, n_layers for logits).
// @column position  Token position.
// @column token  Text of the token at that position (a logit: the predicted token).
// @column feature_index  Feature index (features), token id (tokens, logits), null (errors).
// @column feature_uid  Catalog feature uid (features only).
// @column activation  Activation (features).
// @column influence  Influence on the logits.
// @column probability  Probability (logits).
// @column label  Human-readable label.
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(n)
  WHERE g.status = 'complete'
RETURN
  n.node_id AS node_id,
  n.kind AS kind,
  n.layer AS layer,
  n.position AS position,
  n.token AS token,
  n.feature_index AS feature_index,
  n.feature_uid AS feature_uid,
  n.activation AS activation,
  n.influence AS influence,
  n.probability AS probability,
  n.label AS label
ORDER BY
  CASE n.kind WHEN 'token' THEN 0 WHEN 'feature' THEN 1 WHEN 'error' THEN 2 ELSE 3 END,
  layer, position, node_id
