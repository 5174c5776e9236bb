// Every edge of one graph (source -> target, direct linear effect), strongest first.
//
// share is |weight| / (sum of |weight| into the same target), the normalisation used by the path
// queries.
// @param graph str  The graph uid.
// @param min_abs_weight float = 0.0  Leave out edges with |weight| below this.
// @column source  Source node id.
// @column target  Target node id.
// @column weight  Edge weight.
// @column share  |weight| / sum of |weight| into the target.
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(b)
  WHERE g.status = 'complete'
MATCH (a)-[r:ATTR]->(b)
WITH b, collect([a.node_id, r.weight]) AS inputs, sum(abs(r.weight)) AS total
UNWIND inputs AS e
WITH e[0] AS source, b.node_id AS target, e[1] AS weight, abs(e[1]) / total AS share
  WHERE abs(weight) >= $min_abs_weight
RETURN source, target, weight, share
ORDER BY abs(weight) DESC
