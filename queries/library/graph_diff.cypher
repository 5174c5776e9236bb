// The difference between two graphs: nodes and edges found in only one, and the biggest changes.
//
// Nodes are matched across graphs by a key that does not depend on the graph: a feature by its uid
// and position ("uid@pos"), a token by its text and position ("token:text@pos"), an error node by
// layer and position ("error:layer@pos") and a logit by its token ("logit:text"). Positions are
// compared as they are, so this suits prompts that differ in one word (same length). An edge's key
// is its two node keys. Node values are activations (features) or probabilities (logits). Rows
// come token nodes first, then logit nodes, then by |delta|.
// @param graph_a str  The first graph uid.
// @param graph_b str  The second graph uid.
// @param limit int = 50  Most rows per kind of change and item (largest |delta| first).
// @column change  "only_in_a", "only_in_b" or "weight_change".
// @column item  "node" or "edge".
// @column source_key  The node's key, or the edge's source key.
// @column target_key  The edge's target key (null for nodes).
// @column value_a  Edge weight, or node activation / probability, in graph A (null if absent).
// @column value_b  The same in graph B.
// @column delta  value_b - value_a (absent counts as 0).
CALL () {
  UNWIND [['a', $graph_a], ['b', $graph_b]] AS side
  MATCH (g:Graph {uid: side[1]})-[:HAS_NODE]->(n)
    WHERE g.status = 'complete'
  CALL (n) {
    RETURN 'node' AS item, n AS source, null AS target,
      coalesce(n.activation, n.probability) AS value
    UNION ALL
    MATCH (s)-[r:ATTR]->(n)
    RETURN 'edge' AS item, s AS source, n AS target, r.weight AS value
  }
  WITH side[0] AS which, item, value, [x IN [source, target] WHERE x IS NOT NULL | CASE x.kind
      WHEN 'feature' THEN x.feature_uid + '@' + toString(x.position)
      WHEN 'logit' THEN 'logit:' + x.token
      WHEN 'token' THEN 'token:' + x.token + '@' + toString(x.position)
      ELSE 'error:' + toString(x.layer) + '@' + toString(x.position) END] AS keys
  RETURN which, item, keys[0] AS source_key, keys[1] AS target_key, value
}
WITH item, source_key, target_key,
  collect(CASE WHEN which = 'a' THEN [value] END) AS in_a,
  collect(CASE WHEN which = 'b' THEN [value] END) AS in_b
WITH item, source_key, target_key, in_a[0][0] AS value_a, in_b[0][0] AS value_b,
  CASE WHEN size(in_a) = 0 THEN 'only_in_b' WHEN size(in_b) = 0 THEN 'only_in_a'
    ELSE 'weight_change' END AS change
  WHERE change <> 'weight_change' OR item = 'edge'
WITH change, item, source_key, target_key, value_a, value_b,
  coalesce(value_b, 0.0) - coalesce(value_a, 0.0) AS delta
  ORDER BY CASE WHEN item = 'edge' THEN 2 WHEN source_key STARTS WITH 'token:' THEN 0
    WHEN source_key STARTS WITH 'logit:' THEN 1 ELSE 2 END, abs(delta) DESC
WITH change, item, collect({s: source_key, t: target_key, a: value_a, b: value_b, d: delta}) AS rows
UNWIND rows[..$limit] AS r
RETURN change, item, r.s AS source_key, r.t AS target_key, r.a AS value_a, r.b AS value_b,
  r.d AS delta
ORDER BY change, item DESC
