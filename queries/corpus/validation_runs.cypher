// Validation runs (of one supernode, or all), with their success counts.
MATCH (v:Validation)
  WHERE $supernode IS NULL OR v.supernode = $supernode
RETURN v.uid AS uid, v.supernode AS supernode, v.kind AS kind, v.scale AS scale,
  v.other AS other, v.strength AS strength, v.remove_scale AS remove_scale, v.tag AS tag,
  v.expected AS expected, v.created_at AS created_at,
  COUNT { (v)-[:HAS_RESULT]->() } AS n_prompts,
  COUNT { (v)-[:HAS_RESULT]->(r) WHERE r.present } AS n_present,
  COUNT { (v)-[:HAS_RESULT]->(r) WHERE r.present AND r.success } AS n_success
ORDER BY created_at DESC
