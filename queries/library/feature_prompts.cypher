// The prompts in which a feature is active, with its activation and influence.
//
// One row per instance of the feature in a complete graph (a feature active at two positions of a
// prompt gives two rows), found through the index on Node.feature_uid.
// @param feature str  The feature uid ("<transcoder>/<layer>/<index>").
// @param order_by str = "activation"  "activation" (largest first) or "influence" (smallest first).
// @param limit int = 100  Most rows returned.
// @param tag str = null  Only prompts carrying this tag.
// @param model str = null  Only graphs of this model uid.
// @column graph_uid  The graph.
// @column prompt_uid  The prompt.
// @column prompt  The prompt's text.
// @column position  Token position of the instance.
// @column token  Text of the token at that position.
// @column activation  The feature's activation there.
// @column influence  Its cumulative influence share on the logits: smaller = more influential.
// @column node_id  The instance's node id in the graph.
MATCH (n:Node {feature_uid: $feature})
MATCH (g:Graph {uid: n.graph_uid})
  WHERE g.status = 'complete' AND ($model IS NULL OR g.model_uid = $model)
MATCH (pr:Prompt {uid: g.prompt_uid})
  WHERE $tag IS NULL OR $tag IN pr.tags
RETURN
  g.uid AS graph_uid,
  pr.uid AS prompt_uid,
  pr.text AS prompt,
  n.position AS position,
  n.token AS token,
  n.activation AS activation,
  n.influence AS influence,
  n.node_id AS node_id
ORDER BY
  CASE $order_by WHEN 'influence' THEN n.influence END ASC,
  CASE $order_by WHEN 'influence' THEN null ELSE n.activation END DESC
LIMIT $limit
