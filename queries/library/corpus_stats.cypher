// Corpus statistics per model and transcoder: graphs, prompts, sizes, features seen, scores.
//
// Sizes come from the Graph nodes' n_nodes / n_edges, features seen from the catalog aggregates
// (Feature.n_graphs > 0), so the query reads no per-graph nodes. Score quantiles are over complete
// graphs.
// @column model_uid  The model.
// @column transcoder_uid  The transcoder.
// @column graphs_complete  Complete graphs.
// @column graphs_failed  Failed graphs.
// @column prompts  Distinct prompts with a complete graph.
// @column nodes  Total nodes over complete graphs.
// @column edges  Total edges over complete graphs.
// @column mean_edges  Mean edges per complete graph.
// @column features_seen  Catalog features of the transcoder seen in at least one graph.
// @column replacement_p10  10th percentile of the replacement score.
// @column replacement_p50  Median replacement score.
// @column replacement_p90  90th percentile of the replacement score.
// @column completeness_p10  10th percentile of the completeness score.
// @column completeness_p50  Median completeness score.
// @column completeness_p90  90th percentile of the completeness score.
MATCH (g:Graph)
WITH g.model_uid AS model_uid, g.transcoder_uid AS transcoder_uid,
  collect(CASE WHEN g.status = 'complete' THEN g END) AS done,
  count(CASE WHEN g.status = 'failed' THEN 1 END) AS graphs_failed
CALL (done) {
  UNWIND done AS g
  RETURN
    count(g) AS graphs_complete,
    count(DISTINCT g.prompt_uid) AS prompts,
    sum(g.n_nodes) AS nodes,
    sum(g.n_edges) AS edges,
    avg(g.n_edges) AS mean_edges,
    percentileCont(g.replacement_score, 0.1) AS replacement_p10,
    percentileCont(g.replacement_score, 0.5) AS replacement_p50,
    percentileCont(g.replacement_score, 0.9) AS replacement_p90,
    percentileCont(g.completeness_score, 0.1) AS completeness_p10,
    percentileCont(g.completeness_score, 0.5) AS completeness_p50,
    percentileCont(g.completeness_score, 0.9) AS completeness_p90
}
CALL (transcoder_uid) {
  MATCH (f:Feature {transcoder_uid: transcoder_uid})
    WHERE f.n_graphs > 0
  RETURN count(f) AS features_seen
}
RETURN
  model_uid, transcoder_uid, graphs_complete, graphs_failed, prompts, nodes, edges, mean_edges,
  features_seen, replacement_p10, replacement_p50, replacement_p90,
  completeness_p10, completeness_p50, completeness_p90
ORDER BY model_uid, transcoder_uid
