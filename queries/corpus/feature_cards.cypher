// Catalog facts of a set of features: layer, index, label, reached logits with their counts.
UNWIND $uids AS uid
MATCH (f:Feature {uid: uid})
RETURN f.uid AS feature_uid, f.layer AS layer, f.index AS index, f.label AS label,
  f.reached_logits AS reached_logits, f.reached_logit_counts AS reached_logit_counts
