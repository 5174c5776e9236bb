// Multi-hop chains token -> ... -> a given feature or supernode -> ... -> logit, per graph.
//
// For "Dallas -> [Texas features] -> Austin": `via` is a feature uid or a supernode (any member).
// Each instance v of a via feature (the max_instances most influential) joins its paths token ->
// features -> v to its paths v -> features above v's layer, at or after its position -> logit.
// Strength is the product of the edges' shares (|w| / target.in_abs_weight).
// @param via str  A feature uid ("<transcoder>/<layer>/<index>") or a supernode name.
// @param token str = null  Text of the input token; null accepts any token.
// @param logit str = null  Text of the output logit; null means the prompt's answer.
// @param max_up int = 3  Most edges from the token to the via feature (capped at 5).
// @param max_down int = 3  Most edges from the via feature to the logit (capped at 5).
// @param min_strength float = 0.0001  Drop chains weaker than this.
// @param per_graph int = 5  Strongest chains kept per graph.
// @param max_instances int = 50  Most via-feature instances searched (most influential first).
// @param limit int = 100  Most rows returned (strongest first).
// @param tag str = null  Only prompts carrying this tag.
// @param model str = null  Only graphs of this model uid.
// @param transcoder str = null  Only graphs of this transcoder uid.
// @column graph_uid  The graph.
// @column prompt  The prompt's text.
// @column via_feature  The via feature's uid on this chain.
// @column hops  Number of edges on the chain.
// @column strength  Product of the edges' shares.
// @column sign  Product of the signs of the edge weights.
// @column node_ids  Node ids from token to logit.
// @column features  Feature uids of the intermediate nodes, in order.
// @column labels  Labels of the intermediate features, in order.
// @column weights  Raw edge weights along the chain.
WITH [$via] + COLLECT { MATCH (:Supernode {name: $via})-[:GROUPS]->(f) RETURN f.uid } AS uids
MATCH (v:FeatureNode) WHERE v.feature_uid IN uids AND ($token IS NULL OR EXISTS {
  MATCH (x:TokenNode {token: $token}) WHERE x.graph_uid = v.graph_uid AND x.position <= v.position
})
MATCH (g:Graph {uid: v.graph_uid})
  WHERE g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
MATCH (pr:Prompt {uid: g.prompt_uid})
  WHERE $tag IS NULL OR $tag IN pr.tags
// Most influential = smallest cumulative share (docs/schema.md); no influence ranks last.
WITH g, pr, v ORDER BY coalesce(v.influence, 1.0) ASC LIMIT $max_instances
WITH g, pr, collect(v) AS vs
CALL (pr, vs) {
  UNWIND vs AS v
  // Downstream first: v -> features above v's layer, at or after its position -> the logit.
  MATCH down = (v) (()-[d:ATTR]->(y:FeatureNode) WHERE y.layer > v.layer
      AND y.position >= v.position AND abs(d.weight) >= $min_strength * y.in_abs_weight){0,4}
    ()-[e:ATTR]->(l:LogitNode)
    WHERE l.token = coalesce($logit, pr.answer) AND length(down) <= $max_down
      AND abs(e.weight) >= $min_strength * l.in_abs_weight
  WITH v, down, relationships(down) AS rs
  WITH v, down, reduce(s = 1.0, r IN rs | s * abs(r.weight) / endNode(r).in_abs_weight) AS s_down
    WHERE s_down >= $min_strength
  WITH v, collect(down) AS downs, max(s_down) AS best_down
  // Upstream: back from v to the token; a chain is at most best_down times as strong as its
  // upstream half, so each upstream edge needs a share of at least min_strength / best_down.
  MATCH up = (v) ((x)<-[r:ATTR]-(:FeatureNode)
      WHERE abs(r.weight) * best_down >= $min_strength * x.in_abs_weight){0,4}
    (f)<-[r0:ATTR]-(t:TokenNode)
    WHERE ($token IS NULL OR t.token = $token) AND t.position <= v.position
      AND length(up) <= $max_up AND abs(r0.weight) * best_down >= $min_strength * f.in_abs_weight
  UNWIND downs AS down
  WITH v, reverse(nodes(up)) + nodes(down)[1..] AS path,
    reverse(relationships(up)) + relationships(down) AS rels
  WITH v, path, rels,
    reduce(s = 1.0, r IN rels | s * abs(r.weight) / endNode(r).in_abs_weight) AS strength
    WHERE strength >= $min_strength
  RETURN v, path, rels, strength ORDER BY strength DESC LIMIT $per_graph
}
RETURN g.uid AS graph_uid, pr.text AS prompt, v.feature_uid AS via_feature, size(rels) AS hops,
  strength, reduce(s = 1, r IN rels | s * sign(r.weight)) AS sign,
  [n IN path | n.node_id] AS node_ids,
  [n IN path[1..-1] | n.feature_uid] AS features,
  [n IN path[1..-1] | n.label] AS labels,
  [r IN rels | r.weight] AS weights
ORDER BY strength DESC
LIMIT $limit
