// Several catalog features at once, by uid, with their labels and corpus counts.
//
// @param features list[str]  Feature uids ("<transcoder>/<layer>/<index>").
// @column feature_uid  The feature uid.
// @column label  Its label.
// @column layer  Its layer.
// @column n_graphs  Complete graphs in which it appears.
// @column mean_influence  Mean influence over those graphs.
MATCH (f:Feature)
  WHERE f.uid IN $features
RETURN
  f.uid AS feature_uid,
  f.label AS label,
  f.layer AS layer,
  f.n_graphs AS n_graphs,
  f.mean_influence AS mean_influence
ORDER BY f.layer, f.uid
