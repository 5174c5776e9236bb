// A feature's strongest inputs and outputs across the corpus, from the AGG_ATTR aggregates.
//
// AGG_ATTR holds, per ordered feature pair, the edge statistics (n_graphs, sum_weight) over the
// complete graphs in which both features are joined by an edge (all of them once the ingest run
// has folded its graphs in, see docs/schema.md), so this reads no per-graph data. Neighbours are ranked by |sum_weight| within each direction.
// @param feature str  The feature uid ("<transcoder>/<layer>/<index>").
// @param limit int = 20  Most neighbours per direction.
// @param min_graphs int = 1  Ignore pairs joined in fewer graphs than this.
// @column direction  "input" (neighbour -> feature) or "output" (feature -> neighbour).
// @column neighbour_uid  The neighbouring feature's uid.
// @column label  Its label.
// @column layer  Its layer.
// @column n_graphs  Graphs with an edge between the two.
// @column sum_weight  Sum of the edge weights over those graphs.
// @column mean_weight  sum_weight / n_graphs.
MATCH (f:Feature {uid: $feature})
CALL (f) {
  MATCH (f)<-[a:AGG_ATTR]-(other:Feature)
    WHERE a.n_graphs >= $min_graphs
  RETURN 'input' AS direction, other, a
    ORDER BY abs(a.sum_weight) DESC LIMIT $limit
  UNION ALL
  MATCH (f)-[a:AGG_ATTR]->(other:Feature)
    WHERE a.n_graphs >= $min_graphs
  RETURN 'output' AS direction, other, a
    ORDER BY abs(a.sum_weight) DESC LIMIT $limit
}
RETURN
  direction,
  other.uid AS neighbour_uid,
  other.label AS label,
  other.layer AS layer,
  a.n_graphs AS n_graphs,
  a.sum_weight AS sum_weight,
  a.sum_weight / a.n_graphs AS mean_weight
ORDER BY direction, abs(sum_weight) DESC
