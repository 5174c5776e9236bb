// Supernode-level paths across graphs: token -> S1 -> ... -> Sk -> logit in the collapsed graphs.
//
// In each complete graph holding members of every listed supernode, the token nodes (with the
// given text, or all tokens), each supernode's member instances and the logit nodes (the given
// token, or the prompt's answer) form groups. A hop's weight is the sum of the weights of the ATTR
// edges from one group to the next; its share is |weight| / (sum of |w| of all edges entering the
// next group from outside it), as in the collapsed graph. Strength is the product of the hop
// shares. Graphs where some hop has no edge are left out.
// @param supernodes list[str]  Supernode names in path order, e.g. ["texas", "say-austin"].
// @param token str = null  Text of the input token; null accepts any token.
// @param logit str = null  Text of the output logit; null means the prompt's answer.
// @param limit int = 100  Most rows returned (strongest first).
// @param tag str = null  Only prompts carrying this tag.
// @param model str = null  Only graphs of this model uid.
// @param transcoder str = null  Only graphs of this transcoder uid.
// @column graph_uid  The graph.
// @column prompt  The prompt's text.
// @column strength  Product of the hop shares.
// @column hop_weights  Summed edge weight of each hop, token side first.
// @column hop_shares  Share of each hop.
// @column members_present  Member instances found per supernode, in order.
WITH [name IN $supernodes |
  COLLECT { MATCH (:Supernode {name: name})-[:GROUPS]->(f:Feature) RETURN f.uid }] AS member_uids
  WHERE size($supernodes) > 0
MATCH (v:Node) WHERE v.feature_uid IN member_uids[0]
WITH DISTINCT member_uids, v.graph_uid AS graph_uid
  WHERE $token IS NULL
    OR EXISTS { MATCH (x:TokenNode {token: $token}) WHERE x.graph_uid = graph_uid }
MATCH (g:Graph {uid: graph_uid})
  WHERE g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
MATCH (pr:Prompt {uid: g.prompt_uid})
  WHERE $tag IS NULL OR $tag IN pr.tags
WITH g, pr,
  [COLLECT {
    MATCH (g)-[:HAS_NODE]->(x:TokenNode) WHERE $token IS NULL OR x.token = $token RETURN x
  }]
  + [uids IN member_uids |
    COLLECT { MATCH (g)-[:HAS_NODE]->(x:FeatureNode) WHERE x.feature_uid IN uids RETURN x }]
  + [COLLECT {
    MATCH (g)-[:HAS_NODE]->(x:LogitNode) WHERE x.token = coalesce($logit, pr.answer) RETURN x
  }] AS groups
  WHERE all(grp IN groups WHERE size(grp) > 0)
// Hop i: every edge into group i + 1, summed when it comes from group i (the hop's weight) and
// in |w| when it comes from outside group i + 1 (the total the hop's share divides by).
CALL (groups) {
  UNWIND range(0, size(groups) - 2) AS i
  UNWIND groups[i + 1] AS b
  MATCH (a)-[r:ATTR]->(b)
  WITH i, sum(CASE WHEN a IN groups[i] THEN r.weight ELSE 0.0 END) AS weight,
    sum(CASE WHEN a IN groups[i + 1] THEN 0.0 ELSE abs(r.weight) END) AS total ORDER BY i
  RETURN collect([weight, total]) AS hops
}
WITH g, pr, groups, hops
  WHERE size(hops) = size(groups) - 1 AND all(h IN hops WHERE h[0] <> 0.0)
WITH g, pr, groups, [h IN hops | h[0]] AS hop_weights, [h IN hops | abs(h[0]) / h[1]] AS hop_shares
RETURN g.uid AS graph_uid, pr.text AS prompt, reduce(s = 1.0, x IN hop_shares | s * x) AS strength,
  hop_weights, hop_shares, [grp IN groups[1..-1] | size(grp)] AS members_present
ORDER BY strength DESC
LIMIT $limit
