// The corpus edges (AGG_ATTR) leaving each of a set of features, as lists: one row per feature
// with its catalogue number and, per outgoing edge, the pair key (source number * 2^32 + target
// number) and the graphs joining the pair. Only relationship properties are read (no target
// node), so the caller keeps the targets it wants by their number.
UNWIND $uids AS uid
MATCH (a:Feature {uid: uid})
CALL (a) {
  MATCH (a)-[r:AGG_ATTR]->()
  RETURN collect(r.pair) AS pairs, collect(r.n_graphs) AS n_graphs
}
RETURN uid AS feature_uid, a.number AS number, pairs, n_graphs
