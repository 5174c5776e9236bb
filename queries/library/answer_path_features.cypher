// Features on the paths to the answer in at least a given fraction of the graphs with a tag.
//
// For each complete graph of a prompt carrying `tag`, the search walks backwards from the logit of
// the prompt's answer (Prompt.answer) to any input token, keeping paths of at most max_hops edges
// whose strength (product of edge shares |w| / sum of |w| into the target) is at least
// min_strength. A feature counts for a graph when it lies on at least one such path. The fraction
// is over all complete graphs with the tag (a graph whose answer is not among its logits counts
// as a graph without any such feature).
// @param tag str  The prompt tag, e.g. "two-hop".
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
WITH graphs, size(graphs) AS n_total
UNWIND graphs AS pair
WITH pair[0] AS g, pair[1] AS answer, n_total
MATCH (g)-[:HAS_NODE]->(l:LogitNode)
  WHERE l.token = answer
// Backward beam from the answer's logit: each hop reads the head's input lists (in_nodes,
// in_weights) once, which gives the shares, and looks at a source node only if it is strong
// enough to stay. The graph's nodes are collected once in idx order, so that a source is
// nodes[idx]: half the time of an index seek on (graph_uid, idx) per source (docs/queries.md).
WITH g, n_total, l, COLLECT { MATCH (g)-[:HAS_NODE]->(n) RETURN n ORDER BY n.idx } AS nodes
WITH g, n_total,
  reduce(acc = {open: [{head: l, s: 1.0, nodes: []}], done: []},
    hop IN range(1, CASE WHEN $max_hops < 6 THEN $max_hops ELSE 6 END) |
    reduce(z = acc, nxt IN [COLLECT {
      UNWIND acc.open AS p
      WITH p, p.head.in_nodes AS srcs, p.head.in_weights AS ws
      WITH p, srcs, ws, reduce(total = 0.0, w IN ws | total + abs(w)) AS total
      UNWIND [i IN range(0, size(ws) - 1) WHERE abs(ws[i]) / total * p.s >= $min_strength] AS i
      WITH p, nodes[srcs[i]] AS a, abs(ws[i]) / total AS share
        WHERE a:TokenNode OR (a:FeatureNode AND hop < $max_hops)
      RETURN {head: a, s: p.s * share, nodes: p.nodes + a}
    }] | {
      open: [q IN nxt WHERE q.head:FeatureNode],
      done: z.done + [q IN nxt WHERE q.head:TokenNode]
    })
  ).done AS paths
UNWIND paths AS p
UNWIND p.nodes AS n
WITH g, n_total, n.feature_uid AS feature_uid, max(p.s) AS best
  WHERE feature_uid IS NOT NULL
WITH feature_uid, n_total, count(g) AS n_graphs, avg(best) AS mean_best_strength
  WHERE n_graphs >= $min_fraction * n_total
MATCH (f:Feature {uid: feature_uid})
RETURN
  feature_uid,
  f.label AS label,
  f.layer AS layer,
  n_graphs,
  toFloat(n_graphs) / n_total AS fraction,
  mean_best_strength
ORDER BY fraction DESC, mean_best_strength DESC
LIMIT $limit
