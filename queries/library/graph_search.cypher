// Graphs with their prompts, filtered by text, tag, model, transcoder, status and scores, newest first.
//
// The dashboard's prompt list and its list of recent ingests. `text` matches anywhere in the
// prompt, ignoring case. Score filters leave out graphs without that score (failed graphs).
// @param text str = null  Part of the prompt text; null matches any prompt.
// @param tag str = null  Only prompts carrying this tag.
// @param model str = null  Only graphs of this model uid.
// @param transcoder str = null  Only graphs of this transcoder uid.
// @param status str = null  "complete" or "failed"; null means both.
// @param min_replacement float = null  Only graphs with at least this replacement score.
// @param min_completeness float = null  Only graphs with at least this completeness score.
// @param limit int = 200  Most rows returned.
// @column graph_uid  The graph.
// @column prompt_uid  Its prompt.
// @column prompt  The prompt's text.
// @column tags  The prompt's tags.
// @column answer  The prompt's expected answer (may be null).
// @column model_uid  The model.
// @column transcoder_uid  The transcoder.
// @column status  "complete" or "failed".
// @column error  Why the graph failed (failed graphs only).
// @column replacement_score  Replacement score.
// @column completeness_score  Completeness score.
// @column n_nodes  Nodes in the pruned graph.
// @column n_edges  Edges in the pruned graph.
// @column created_at  When the graph was written.
MATCH (pr:Prompt)-[:HAS_GRAPH]->(g:Graph)
  WHERE ($text IS NULL OR toLower(pr.text) CONTAINS toLower($text))
    AND ($tag IS NULL OR $tag IN pr.tags)
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
    AND ($status IS NULL OR g.status = $status)
    AND ($min_replacement IS NULL OR g.replacement_score >= $min_replacement)
    AND ($min_completeness IS NULL OR g.completeness_score >= $min_completeness)
RETURN
  g.uid AS graph_uid,
  pr.uid AS prompt_uid,
  pr.text AS prompt,
  pr.tags AS tags,
  pr.answer AS answer,
  g.model_uid AS model_uid,
  g.transcoder_uid AS transcoder_uid,
  g.status AS status,
  g.error AS error,
  g.replacement_score AS replacement_score,
  g.completeness_score AS completeness_score,
  g.n_nodes AS n_nodes,
  g.n_edges AS n_edges,
  g.created_at AS created_at
ORDER BY g.created_at DESC, g.uid
LIMIT $limit
