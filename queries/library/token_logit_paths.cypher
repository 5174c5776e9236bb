// Paths from an input token to an output logit through features, per graph, strongest first.
//
// Path strength is the product of the normalised weights of its edges, where an edge's normalised
// weight (its share) is |w| / (sum of |w| over all edges into the same target), as in the pruning
// step of Circuit Tracing (A_hat). A share is the fraction of the target's direct input that comes
// from the source, so strengths lie in (0, 1] and compare across graphs. The search walks
// backwards from the logit and drops partial paths whose strength falls below min_strength, which
// is exact pruning: extending a path can only lower its strength; a partial path that has one hop
// left is kept only if its head is fed directly by the token (also exact). Once a graph has
// per_graph complete paths, partial paths weaker than the per_graph-th of them are dropped too
// (exact for the same reason; it cuts the database reads for frequent tokens about threefold).
// Every node between the token and the logit is a feature. Only complete graphs are searched.
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
MATCH (t:TokenNode {token: $token})
  WHERE t.graph_uid = l.graph_uid
WITH l, collect(t) AS starts, collect(t.idx) AS start_idx, min(t.position) AS min_pos
MATCH (g:Graph {uid: l.graph_uid})
  WHERE g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
MATCH (pr:Prompt {uid: g.prompt_uid})
  WHERE $tag IS NULL OR $tag IN pr.tags
// The graph's nodes, collected once in idx order, so that a source is nodes[idx]: half the time of
// an index seek on (graph_uid, idx) per source (docs/queries.md).
WITH g, pr, l, starts, start_idx, min_pos,
  COLLECT { MATCH (g)-[:HAS_NODE]->(n) RETURN n ORDER BY n.idx } AS nodes
// Backward beam: `open` holds partial paths ending (at their head) in a feature, `done` the paths
// that reached a start token. One iteration per hop; each reads the head's input lists
// (in_nodes, in_weights) once, which gives the shares, and looks at a source node only if it is
// strong enough to stay. `floor` is the strength a partial path needs: min_strength, or the
// per_graph-th best complete path so far when higher. With no hop left only a start token will
// do, which its idx tells; with one hop left a feature must be fed directly by a start token
// (such a feature is at or after the token).
WITH g, pr, l, starts, start_idx, min_pos, nodes,
  reduce(acc = {open: [{head: l, s: 1.0, nodes: [l], ws: [], shares: []}], done: []},
    hop IN range(1, CASE WHEN $max_hops < 6 THEN $max_hops ELSE 6 END) |
    reduce(z = acc, nxt IN [COLLECT {
      WITH COLLECT {
        UNWIND acc.done AS q WITH q.s AS s ORDER BY s DESC
        SKIP CASE WHEN $per_graph > 0 THEN $per_graph - 1 ELSE 0 END LIMIT 1 RETURN s
      } AS kth
      WITH CASE WHEN kth[0] > $min_strength THEN kth[0] ELSE $min_strength END AS floor
      UNWIND acc.open AS p
      WITH floor, p WHERE p.s >= floor
      WITH floor, p, p.head.in_nodes AS srcs, p.head.in_weights AS ws
      WITH floor, p, srcs, ws, reduce(total = 0.0, w IN ws | total + abs(w)) AS total
      UNWIND [i IN range(0, size(ws) - 1) WHERE abs(ws[i]) / total * p.s >= floor] AS i
      WITH p, srcs[i] AS j, ws[i] AS w, abs(ws[i]) / total AS share
        WHERE hop < $max_hops OR j IN start_idx
      WITH p, j, w, share, nodes[j] AS a
        WHERE j IN start_idx OR (a:FeatureNode AND CASE WHEN hop < $max_hops - 1
          THEN a.position >= min_pos ELSE any(k IN start_idx WHERE k IN a.in_nodes) END)
      RETURN {head: a, s: p.s * share, nodes: p.nodes + a, ws: p.ws + w, shares: p.shares + share}
    }] | {
      open: [q IN nxt WHERE NOT q.head IN starts],
      done: z.done + [q IN nxt WHERE q.head IN starts AND hop >= $min_hops]
    })
  ) AS beam
UNWIND beam.done AS p
WITH g, pr, p ORDER BY p.s DESC
WITH g, pr, collect(p)[..$per_graph] AS top
UNWIND top AS p
WITH g, pr, p, reverse(p.nodes) AS path_nodes
RETURN
  g.uid AS graph_uid,
  pr.text AS prompt,
  size(p.ws) AS hops,
  p.s AS strength,
  reduce(s = 1, w IN p.ws | s * sign(w)) AS sign,
  [n IN path_nodes | n.node_id] AS node_ids,
  [n IN path_nodes[1..-1] | n.feature_uid] AS features,
  [n IN path_nodes[1..-1] | n.label] AS labels,
  reverse(p.ws) AS weights,
  reverse(p.shares) AS shares
ORDER BY strength DESC
LIMIT $limit
