// Catalog facts of a set of features: layer, index, label, reached logits with their counts, and
// the catalogue's strongest direct logit effects (top and bottom; null without a catalogue).
UNWIND $uids AS uid
MATCH (f:Feature {uid: uid})
RETURN f.uid AS feature_uid, f.layer AS layer, f.index AS index, f.label AS label,
  f.reached_logits AS reached_logits, f.reached_logit_counts AS reached_logit_counts,
  f.top_logits AS top_logits, f.top_logit_effects AS top_logit_effects,
  f.bottom_logits AS bottom_logits, f.bottom_logit_effects AS bottom_logit_effects
