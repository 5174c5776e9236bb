// The input tokens that feed a feature directly, aggregated over the graphs where it appears.
//
// AGG_ATTR aggregates only feature -> feature edges, so a layer-0 feature fed by its token shows
// no inputs there; this reads the token -> feature edges of each of its nodes. The share of an
// edge is |weight| / in_abs_weight of the feature's node (schema 3).
// @param feature str  The feature uid ("<transcoder>/<layer>/<index>").
// @param limit int = 20  Most tokens returned.
// @column token  The input token's text.
// @column n_graphs  Graphs in which that token feeds the feature.
// @column sum_weight  Sum of the edge weights over those graphs.
// @column mean_weight  sum_weight / n_graphs.
// @column mean_share  Mean share of the feature's direct input that the token carries.
MATCH (n:Node {feature_uid: $feature})
MATCH (t:TokenNode)-[r:ATTR]->(n)
WITH t.token AS token, n, r.weight AS weight,
  CASE WHEN n.in_abs_weight > 0 THEN abs(r.weight) / n.in_abs_weight ELSE 0.0 END AS share
WITH token, count(DISTINCT n.graph_uid) AS n_graphs, sum(weight) AS sum_weight,
  avg(share) AS mean_share
RETURN token, n_graphs, sum_weight, sum_weight / n_graphs AS mean_weight, mean_share
ORDER BY abs(sum_weight) DESC
LIMIT $limit
