// Every edge of one graph (source -> target, direct linear effect), strongest first.
//
// share is |weight| / target.in_abs_weight (the sum of |weight| into the target), the
// normalisation used by the path queries.
// @param graph str  The graph uid.
// @param min_abs_weight float = 0.0  Leave out edges with |weight| below this.
// @column source  Source node id.
// @column target  Target node id.
// @column weight  Edge weight.
// @column share  |weight| / sum of |weight| into the target.
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(target)
  WHERE g.status = 'complete'
MATCH (source)-[r:ATTR]->(target)
  WHERE abs(r.weight) >= $min_abs_weight
RETURN source.node_id AS source, target.node_id AS target, r.weight AS weight,
  abs(r.weight) / target.in_abs_weight AS share
ORDER BY abs(weight) DESC
