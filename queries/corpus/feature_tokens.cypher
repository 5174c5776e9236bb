// The input tokens at which a set of features act in the tagged graphs: per feature and token,
// how many graphs hold an instance there.
UNWIND $uids AS uid
MATCH (n:Node {feature_uid: uid})
  WHERE n.graph_uid IN $graphs
WITH uid, n.token AS token, count(DISTINCT n.graph_uid) AS n_graphs
RETURN uid AS feature_uid, token, n_graphs
