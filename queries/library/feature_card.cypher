// One catalog feature: label, density, logit effects, top contexts and corpus aggregates.
//
// @param feature str  The feature uid ("<transcoder>/<layer>/<index>").
// @column feature_uid  The feature uid.
// @column transcoder_uid  Its transcoder.
// @column layer  Its layer.
// @column index  Its index in the layer.
// @column label  Its label.
// @column density  Share of tokens on which it is active.
// @column max_activation  Its largest activation over the catalogue's corpus.
// @column top_logits  Tokens its decoder promotes most (through the unembedding).
// @column top_logit_effects  The effect on each of top_logits.
// @column bottom_logits  Tokens it suppresses most.
// @column bottom_logit_effects  The effect on each of bottom_logits.
// @column top_contexts  Top activating contexts (JSON string).
// @column n_graphs  Complete graphs in which it appears.
// @column mean_influence  Mean influence over those graphs.
// @column mean_activation  Mean activation over those graphs.
// @column top_reached_logits  Logits it most often reaches.
MATCH (f:Feature {uid: $feature})
RETURN
  f.uid AS feature_uid,
  f.transcoder_uid AS transcoder_uid,
  f.layer AS layer,
  f.index AS index,
  f.label AS label,
  f.density AS density,
  f.max_activation AS max_activation,
  f.top_logits AS top_logits,
  f.top_logit_effects AS top_logit_effects,
  f.bottom_logits AS bottom_logits,
  f.bottom_logit_effects AS bottom_logit_effects,
  f.top_contexts AS top_contexts,
  f.n_graphs AS n_graphs,
  f.mean_influence AS mean_influence,
  f.mean_activation AS mean_activation,
  f.top_reached_logits AS top_reached_logits
