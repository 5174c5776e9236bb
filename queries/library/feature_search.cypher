// Catalog features by label text or uid, most widely seen first.
//
// @param text str = null  Part of the label or uid, ignoring case; null lists every feature.
// @param transcoder str = null  Only features of this transcoder uid.
// @param limit int = 50  Most rows returned.
// @column feature_uid  The feature uid.
// @column label  Its label.
// @column layer  Its layer.
// @column n_graphs  Complete graphs in which it appears.
// @column mean_influence  Mean influence over those graphs.
MATCH (f:Feature)
  WHERE ($transcoder IS NULL OR f.transcoder_uid = $transcoder)
    AND ($text IS NULL OR toLower(coalesce(f.label, '')) CONTAINS toLower($text)
      OR toLower(f.uid) CONTAINS toLower($text))
RETURN
  f.uid AS feature_uid,
  f.label AS label,
  f.layer AS layer,
  f.n_graphs AS n_graphs,
  f.mean_influence AS mean_influence
ORDER BY coalesce(f.n_graphs, 0) DESC, f.uid
LIMIT $limit
