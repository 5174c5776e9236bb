// The complete graphs of the prompts carrying a tag, with the prompt's answer and the graph's
// metadata (which names the model and transcoder it was computed with).
MATCH (p:Prompt)-[:HAS_GRAPH]->(g:Graph)
  WHERE $tag IN p.tags AND g.status = 'complete'
    AND ($model IS NULL OR g.model_uid = $model)
    AND ($transcoder IS NULL OR g.transcoder_uid = $transcoder)
RETURN g.uid AS graph_uid, p.uid AS prompt_uid, p.text AS prompt, p.answer AS answer,
  p.tags AS tags, g.model_uid AS model_uid, g.transcoder_uid AS transcoder_uid,
  g.metadata AS metadata
ORDER BY graph_uid
