// Features on the paths to the answer in at least a given fraction of the graphs with a tag.
//
// In each complete graph of a prompt carrying `tag`, a feature counts when it lies on a path
// token -> features -> the logit of the prompt's answer (Prompt.answer) of at most max_hops edges
// (capped at 6) whose strength (product of the edges' shares |w| / target.in_abs_weight) is at
// least min_strength. The fraction is over all complete graphs with the tag (a graph whose answer
// is not among its logits counts as a graph without any such feature).
// @param tag str  The prompt tag, e.g. "two_hop".
// @param min_fraction float = 0.5  Keep features found in at least this fraction of the graphs.
// @param max_hops int = 4  Most edges on a path (capped at 6).
// @param min_strength float = 0.001  Ignore paths weaker than this.
// @param limit int = 100  Most rows returned.
// @param model str = null  Only graphs of this model uid.
// @param transcoder str = null  Only graphs of this transcoder uid.
// @column feature_uid  The catalog feature.
// @column label  Its label.
// @column layer  Its layer.
// @column n_graphs  Tagged graphs in which it lies on a path to the answer.
// @column fraction  n_graphs / all complete graphs with the tag.
// @column mean_best_strength  Mean, over those graphs, of its strongest path's strength.
MATCH (pr:Prompt)-[:HAS_GRAPH]->(g:Graph)
  WHERE $tag IN pr.tags AND g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
WITH collect([g, pr.answer]) AS graphs
UNWIND graphs AS pair
WITH pair[0] AS g, pair[1] AS answer, size(graphs) AS n_total
MATCH (g)-[:HAS_NODE]->(l:LogitNode {token: answer})
CALL (l) {
  MATCH p = (:TokenNode)-[:ATTR]->{1,2}(l)  // paths of one or two edges
  RETURN nodes(p) AS ns, relationships(p) AS rs
  UNION ALL
  // Longer paths: their last two edges first (strength s_end), then back to a token, each edge
  // with a share of at least min_strength / s_end (exact pruning: a share is at most 1).
  MATCH tail = (m:FeatureNode)-[:ATTR]->(:FeatureNode)-[:ATTR]->(l)
  WITH m, tail,
    reduce(s = 1.0, r IN relationships(tail) | s * abs(r.weight) / endNode(r).in_abs_weight)
      AS s_end
    WHERE s_end >= $min_strength
  MATCH head = (m) ((x)<-[r:ATTR]-(:FeatureNode)
      WHERE abs(r.weight) * s_end >= $min_strength * x.in_abs_weight){0,3}
    (f)<-[r0:ATTR]-(:TokenNode)
    WHERE abs(r0.weight) * s_end >= $min_strength * f.in_abs_weight
  RETURN reverse(nodes(head)) + nodes(tail)[1..] AS ns,
    relationships(head) + relationships(tail) AS rs
}
WITH g, n_total, ns, reduce(s = 1.0, r IN rs | s * abs(r.weight) / endNode(r).in_abs_weight) AS s
  WHERE size(rs) <= $max_hops AND s >= $min_strength AND all(n IN ns[1..-1] WHERE n:FeatureNode)
UNWIND ns[1..-1] AS n
WITH g, n_total, n.feature_uid AS feature_uid, max(s) AS best
WITH feature_uid, n_total, count(g) AS n_graphs, avg(best) AS mean_best_strength
  WHERE n_graphs >= $min_fraction * n_total
MATCH (f:Feature {uid: feature_uid})
RETURN feature_uid, f.label AS label, f.layer AS layer, n_graphs,
  toFloat(n_graphs) / n_total AS fraction, mean_best_strength
ORDER BY fraction DESC, mean_best_strength DESC
LIMIT $limit
