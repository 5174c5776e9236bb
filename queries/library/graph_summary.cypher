// One graph's header: its prompt, model, transcoder, settings, scores and size.
//
// n_layers is the graph's own, else the Model node's, else the layer of the graph's logit nodes
// (which is the model's layer count).
// @param graph str  The graph uid.
// @column graph_uid  The graph.
// @column prompt_uid  Its prompt.
// @column prompt  The prompt's text.
// @column tags  The prompt's tags.
// @column answer  The prompt's expected answer (may be null).
// @column model_uid  The model.
// @column transcoder_uid  The transcoder.
// @column n_layers  Transformer layers of the model.
// @column prompt_tokens  The prompt's tokens, by position.
// @column status  "complete" or "failed".
// @column error  Why the graph failed (failed graphs only).
// @column replacement_score  Replacement score.
// @column completeness_score  Completeness score.
// @column n_nodes  Nodes in the pruned graph.
// @column n_edges  Edges in the pruned graph.
// @column settings  Generation and pruning settings (JSON string).
// @column metadata  Tool and version, sizes before pruning, where the weights were loaded from (JSON).
// @column source  "computed" or "imported".
// @column created_at  When the graph was written.
MATCH (pr:Prompt)-[:HAS_GRAPH]->(g:Graph {uid: $graph})
OPTIONAL MATCH (m:Model {uid: g.model_uid})
CALL (g) {
  OPTIONAL MATCH (g)-[:HAS_NODE]->(l:LogitNode)
  RETURN max(l.layer) AS logit_layer
}
RETURN
  g.uid AS graph_uid,
  pr.uid AS prompt_uid,
  pr.text AS prompt,
  pr.tags AS tags,
  pr.answer AS answer,
  g.model_uid AS model_uid,
  g.transcoder_uid AS transcoder_uid,
  coalesce(g.n_layers, m.n_layers, logit_layer) AS n_layers,
  g.prompt_tokens AS prompt_tokens,
  g.status AS status,
  g.error AS error,
  g.replacement_score AS replacement_score,
  g.completeness_score AS completeness_score,
  g.n_nodes AS n_nodes,
  g.n_edges AS n_edges,
  g.settings AS settings,
  g.metadata AS metadata,
  g.source AS source,
  g.created_at AS created_at
