// Paths from an input token to an output logit through features, per graph, strongest first.
//
// An edge's share is |w| / target.in_abs_weight (the fraction of the target's direct input that
// comes from the source, as in the pruning step of Circuit Tracing); a path's strength is the
// product of its shares, in (0, 1] and comparable across graphs. Every node between the token
// and the logit is a feature. Only complete graphs are searched; max_hops is capped at 6.
// @param token str  Text of the input token as stored in Node.token (e.g. "dallas").
// @param logit str  Text of the output logit's token (e.g. "austin").
// @param min_hops int = 2  Fewest edges on a path (2 = at least one feature).
// @param max_hops int = 4  Most edges on a path (capped at 6).
// @param min_strength float = 0.0001  Drop paths weaker than this.
// @param per_graph int = 5  Strongest paths kept per graph.
// @param limit int = 100  Most rows returned (strongest first).
// @param graph str = null  Only this graph uid.
// @param tag str = null  Only prompts carrying this tag.
// @param model str = null  Only graphs of this model uid.
// @param transcoder str = null  Only graphs of this transcoder uid.
// @column graph_uid  The graph.
// @column prompt  The prompt's text.
// @column hops  Number of edges on the path.
// @column strength  Product of the edges' shares.
// @column sign  Product of the signs of the edge weights (+1 excites, -1 inhibits the logit).
// @column node_ids  Node ids from token to logit.
// @column features  Feature uids of the intermediate nodes, in order.
// @column labels  Labels of the intermediate features, in order.
// @column weights  Raw edge weights along the path.
// @column shares  Normalised edge weights along the path.
MATCH (l:LogitNode {token: $logit})
  WHERE $graph IS NULL OR l.graph_uid = $graph
MATCH (g:Graph {uid: l.graph_uid})
  WHERE g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
MATCH (pr:Prompt {uid: g.prompt_uid})
  WHERE $tag IS NULL OR $tag IN pr.tags
CALL (g) {
  MATCH (t:TokenNode {token: $token}) WHERE t.graph_uid = g.uid
  RETURN collect(t) AS starts, min(t.position) AS min_pos  // a path stays at or after min_pos
}
WITH g, pr, l, starts, min_pos WHERE size(starts) > 0
CALL (starts, min_pos, l) {
  MATCH p = (t)-[:ATTR]->{1,2}(l) WHERE t IN starts  // paths of one or two edges
  RETURN nodes(p) AS ns, relationships(p) AS rs
  UNION ALL
  // Longer paths: their last two edges first (strength s_end), then back to the token, each edge
  // with a share of at least min_strength / s_end (exact pruning: a share is at most 1).
  MATCH tail = (m:FeatureNode)-[:ATTR]->(y:FeatureNode)-[:ATTR]->(l)
    WHERE m.position >= min_pos AND y.position >= min_pos
  WITH starts, min_pos, m, tail,
    reduce(s = 1.0, r IN relationships(tail) | s * abs(r.weight) / endNode(r).in_abs_weight)
      AS s_end
    WHERE s_end >= $min_strength
  MATCH head = (m) ((x)<-[r:ATTR]-(y:FeatureNode) WHERE y.position >= min_pos
      AND abs(r.weight) * s_end >= $min_strength * x.in_abs_weight){0,3} (f)<-[r0:ATTR]-(t)
    WHERE t IN starts AND abs(r0.weight) * s_end >= $min_strength * f.in_abs_weight
  RETURN reverse(nodes(head)) + nodes(tail)[1..] AS ns,
    reverse(relationships(head)) + relationships(tail) AS rs
}
WITH g, pr, ns, rs, [r IN rs | abs(r.weight) / endNode(r).in_abs_weight] AS shares
WITH g, pr, ns, rs, shares, reduce(s = 1.0, x IN shares | s * x) AS strength
  WHERE $min_hops <= size(rs) <= $max_hops AND strength >= $min_strength
    AND all(n IN ns[1..-1] WHERE n:FeatureNode)
WITH g, pr, ns, rs, shares, strength ORDER BY strength DESC
WITH g, pr, collect({ns: ns, rs: rs, shares: shares, strength: strength})[..$per_graph] AS top
UNWIND top AS p
RETURN g.uid AS graph_uid, pr.text AS prompt, size(p.rs) AS hops, p.strength AS strength,
  reduce(s = 1, r IN p.rs | s * sign(r.weight)) AS sign, [n IN p.ns | n.node_id] AS node_ids,
  [n IN p.ns[1..-1] | n.feature_uid] AS features, [n IN p.ns[1..-1] | n.label] AS labels,
  [r IN p.rs | r.weight] AS weights, p.shares AS shares
ORDER BY strength DESC
LIMIT $limit
