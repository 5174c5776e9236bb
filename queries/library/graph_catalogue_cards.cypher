// The catalogue cards of the features of one graph, for the graph view's hover cards.
//
// Read in one batch with the graph: label, top activating contexts and logit effects of every
// catalog feature with a node in the graph (nodes name their feature by `feature_uid`).
// @param graph str  The graph uid.
// @column feature_uid  The catalog feature.
// @column label  Its label.
// @column top_contexts  Its top activating contexts (JSON).
// @column top_logits  Tokens it promotes most.
// @column top_logit_effects  Their effect sizes (aligned).
// @column bottom_logits  Tokens it suppresses most.
// @column bottom_logit_effects  Their effect sizes (aligned).
MATCH (g:Graph {uid: $graph})-[:HAS_NODE]->(n:FeatureNode)
WITH DISTINCT n.feature_uid AS uid
MATCH (f:Feature {uid: uid})
RETURN
  f.uid AS feature_uid,
  f.label AS label,
  f.top_contexts AS top_contexts,
  f.top_logits AS top_logits,
  f.top_logit_effects AS top_logit_effects,
  f.bottom_logits AS bottom_logits,
  f.bottom_logit_effects AS bottom_logit_effects
