// Every edge of one graph (source -> target, direct linear effect), strongest first.
//
// share is |weight| / (sum of |weight| into the same target), the normalisation used by the path
// queries. Each node holds its inputs (in_nodes, in_weights); the sources' node ids come from the
// graph's node ids ordered by idx, read once (no lookup per edge).
// @param graph str  The graph uid.
// @param min_abs_weight float = 0.0  Leave out edges with |weight| below this.
// @column source  Source node id.
// @column target  Target node id.
// @column weight  Edge weight.
// @column share  |weight| / sum of |weight| into the target.
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(n)
  WHERE g.status = 'complete'
WITH n.node_id AS id, n.in_nodes AS srcs, n.in_weights AS ws ORDER BY n.idx
WITH collect([id, srcs, ws]) AS rows, collect(id) AS ids
UNWIND rows AS b
WITH ids, b[0] AS target, b[1] AS srcs, b[2] AS ws
WITH ids, target, srcs, ws, reduce(total = 0.0, w IN ws | total + abs(w)) AS total
UNWIND range(0, size(ws) - 1) AS i
WITH ids[srcs[i]] AS source, target, ws[i] AS weight, abs(ws[i]) / total AS share
  WHERE abs(weight) >= $min_abs_weight
RETURN source, target, weight, share
ORDER BY abs(weight) DESC
