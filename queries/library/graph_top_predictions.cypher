// Each graph's top prediction (its most probable logit) and whether it is the expected answer.
//
// The prompt list and the graph header use it to flag prompts the model gets wrong.
// @param graphs list[str]  Graph uids.
// @column graph_uid  The graph.
// @column top_token  The token of its most probable logit.
// @column top_probability  That logit's probability.
// @column answer  The prompt's expected answer (may be null).
// @column correct  top_token = answer, ignoring surrounding spaces (null without an answer).
UNWIND $graphs AS uid
MATCH (pr:Prompt)-[:HAS_GRAPH]->(g:Graph {uid: uid})
CALL (g) {
  MATCH (g)-[:HAS_NODE]->(l:LogitNode)
  RETURN l.token AS top_token, l.probability AS top_probability
    ORDER BY l.probability DESC LIMIT 1
}
RETURN
  g.uid AS graph_uid,
  top_token,
  top_probability,
  pr.answer AS answer,
  CASE WHEN pr.answer IS NULL THEN null ELSE trim(top_token) = trim(pr.answer) END AS correct
