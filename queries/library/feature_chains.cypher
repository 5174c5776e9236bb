// Multi-hop chains token -> ... -> a given feature or supernode -> ... -> logit, per graph.
//
// For "Dallas -> [Texas features] -> Austin": `via` names one feature (its uid) or a supernode
// (then any of its member features will do). Each instance of a via feature in a complete graph is
// joined to its strongest upstream paths from the input token and downstream paths to the logit.
// Strength is the product of edge shares (|w| / sum of |w| into the edge's target), as in
// token_logit_paths, so the chain's strength is the upstream strength times the downstream one.
// Both halves are searched backwards (from the via feature to the token, from the logit to the via
// feature), dropping partial paths weaker than min_strength (exact pruning). A feature that is
// active in many graphs is searched in its max_instances most influential instances only.
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
WITH [$via] + COLLECT { MATCH (:Supernode {name: $via})-[:GROUPS]->(f:Feature) RETURN f.uid } AS uids
// The via instances: from the feature index, or (more selective) from the input token's nodes.
CALL (uids) {
  WITH uids WHERE $token IS NULL
  MATCH (v:Node) WHERE v.feature_uid IN uids
  RETURN v
  UNION
  WITH uids WHERE $token IS NOT NULL
  MATCH (x:TokenNode {token: $token})
  MATCH (:Graph {uid: x.graph_uid})-[:HAS_NODE]->(v:FeatureNode)
    WHERE v.feature_uid IN uids AND v.position >= x.position
  RETURN v
}
MATCH (g:Graph {uid: v.graph_uid})
  WHERE g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
MATCH (pr:Prompt {uid: g.prompt_uid})
  WHERE $tag IS NULL OR $tag IN pr.tags
// Most influential = smallest cumulative share (docs/schema.md); no influence ranks last.
WITH g, pr, v ORDER BY coalesce(v.influence, 1.0) ASC LIMIT $max_instances
// The graph's nodes, collected once per graph in idx order, so that a source is nodes[idx]: half
// the time of an index seek on (graph_uid, idx) per source (docs/queries.md).
WITH g, pr, collect(v) AS vs
WITH g, pr, vs, COLLECT { MATCH (g)-[:HAS_NODE]->(n) RETURN n ORDER BY n.idx } AS nodes
WITH g, pr, vs, nodes,
  [x IN nodes WHERE x:TokenNode AND ($token IS NULL OR x.token = $token)] AS tokens,
  [x IN nodes WHERE x:LogitNode AND x.token = coalesce($logit, pr.answer)] AS ends
  WHERE size(tokens) > 0 AND size(ends) > 0
UNWIND vs AS v
WITH g, pr, v, nodes, [x IN tokens WHERE x.position <= v.position | x.idx] AS start_idx, ends
  WHERE size(start_idx) > 0
// Both searches read a head's input lists (in_nodes, in_weights) once, which gives the shares, and
// look at a source node only if it is strong enough to stay; a start token or v itself is
// recognised by its idx.
WITH g, pr, v, v.idx AS v_idx, v.layer AS v_layer, v.position AS v_pos, nodes, start_idx, ends
// Upstream: backward from v to a start token.
WITH g, pr, v, v_idx, v_layer, v_pos, nodes, ends,
  reduce(acc = {open: [{head: v, s: 1.0, nodes: [], ws: []}], done: []},
    hop IN range(1, CASE WHEN $max_up < 5 THEN $max_up ELSE 5 END) |
    reduce(z = acc, nxt IN [COLLECT {
      UNWIND acc.open AS p
      WITH p, p.head.in_nodes AS srcs, p.head.in_weights AS ws
      WITH p, srcs, ws, reduce(total = 0.0, w IN ws | total + abs(w)) AS total
      UNWIND [i IN range(0, size(ws) - 1) WHERE abs(ws[i]) / total * p.s >= $min_strength] AS i
      WITH p, srcs[i] AS j, ws[i] AS w, abs(ws[i]) / total AS share
        WHERE hop < $max_up OR j IN start_idx
      WITH p, j, w, share, nodes[j] AS a
        WHERE j IN start_idx OR a:FeatureNode
      RETURN {head: a, j: j, s: p.s * share, nodes: [a] + p.nodes, ws: [w] + p.ws}
    }] | {
      open: [q IN nxt WHERE NOT q.j IN start_idx],
      done: z.done + [q IN nxt WHERE q.j IN start_idx]
    })
  ).done AS ups
  WHERE size(ups) > 0
// Downstream: backward from the end logits to v, through features above v's layer; with one hop
// left a head must be fed directly by v.
WITH g, pr, v, v_idx, v_layer, v_pos, nodes, ups,
  reduce(acc = {open: [e IN ends | {head: e, s: 1.0, nodes: [], ws: []}], done: []},
    hop IN range(1, CASE WHEN $max_down < 5 THEN $max_down ELSE 5 END) |
    reduce(z = acc, nxt IN [COLLECT {
      UNWIND acc.open AS p
      WITH p, p.head.in_nodes AS srcs, p.head.in_weights AS ws
      WITH p, srcs, ws, reduce(total = 0.0, w IN ws | total + abs(w)) AS total
      UNWIND [i IN range(0, size(ws) - 1) WHERE abs(ws[i]) / total * p.s >= $min_strength] AS i
      WITH p, srcs[i] AS j, ws[i] AS w, abs(ws[i]) / total AS share
        WHERE hop < $max_down OR j = v_idx
      WITH p, j, w, share, nodes[j] AS a
        WHERE a.position >= v_pos AND (j = v_idx OR (a:FeatureNode AND a.layer > v_layer
          AND (hop < $max_down - 1 OR v_idx IN a.in_nodes)))
      RETURN {head: a, s: p.s * share, nodes: [p.head] + p.nodes, ws: [w] + p.ws}
    }] | {
      open: [q IN nxt WHERE q.head <> v],
      done: z.done + [q IN nxt WHERE q.head = v]
    })
  ).done AS downs
UNWIND ups AS up
UNWIND downs AS down
WITH g, pr, v, up.s * down.s AS strength, up.nodes + [v] + down.nodes AS path_nodes,
  up.ws + down.ws AS ws
  WHERE strength >= $min_strength
WITH g, pr, v, strength, path_nodes, ws ORDER BY strength DESC
WITH g, pr, collect({v: v, s: strength, nodes: path_nodes, ws: ws})[..$per_graph] AS top
UNWIND top AS c
RETURN
  g.uid AS graph_uid,
  pr.text AS prompt,
  c.v.feature_uid AS via_feature,
  size(c.ws) AS hops,
  c.s AS strength,
  reduce(s = 1, w IN c.ws | s * sign(w)) AS sign,
  [n IN c.nodes | n.node_id] AS node_ids,
  [n IN c.nodes[1..-1] | n.feature_uid] AS features,
  [n IN c.nodes[1..-1] | n.label] AS labels,
  c.ws AS weights
ORDER BY strength DESC
LIMIT $limit
