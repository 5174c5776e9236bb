// One validation run's per-prompt results.
MATCH (v:Validation {uid: $uid})-[:HAS_RESULT]->(r:ValidationResult)
RETURN r.graph_uid AS graph_uid, r.prompt AS prompt, r.answer AS answer, r.present AS present,
  r.p_before AS p_before, r.p_after AS p_after, r.top_before AS top_before,
  r.top_after AS top_after, r.changed AS changed, r.success AS success, r.tags AS tags
ORDER BY graph_uid
