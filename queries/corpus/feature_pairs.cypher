// The corpus edges (AGG_ATTR) among a set of features: graphs joining each pair, summed weight.
UNWIND $uids AS uid
MATCH (a:Feature {uid: uid})-[r:AGG_ATTR]->(b:Feature)
  WHERE b.uid IN $uids
RETURN a.uid AS source, b.uid AS target, r.n_graphs AS n_graphs, r.sum_weight AS sum_weight
