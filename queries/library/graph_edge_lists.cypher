// Every edge of one graph as three parallel lists in a single row (sources, targets, weights).
//
// The same edges as graph_edges, shaped for bulk readers such as the dashboard's graph view: one
// row holding three lists transfers several times faster than one row per edge, because the
// driver's cost is per record.
// @param graph str  The graph uid.
// @column sources  Source node ids.
// @column targets  Target node ids, aligned with sources.
// @column weights  Edge weights, aligned with sources.
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(target)
  WHERE g.status = 'complete'
MATCH (source)-[r:ATTR]->(target)
RETURN collect(source.node_id) AS sources, collect(target.node_id) AS targets,
  collect(r.weight) AS weights
