// The member features of the named supernodes (all supernodes when $names is null).
MATCH (s:Supernode)-[:GROUPS]->(f:Feature)
  WHERE $names IS NULL OR s.name IN $names
RETURN s.name AS supernode, f.uid AS feature_uid, f.layer AS layer, f.index AS index
ORDER BY supernode, feature_uid
