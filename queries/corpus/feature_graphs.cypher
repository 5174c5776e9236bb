// For each feature uid, the graphs (among $graphs) in which it has an instance.
UNWIND $uids AS uid
MATCH (n:Node {feature_uid: uid})
  WHERE n.graph_uid IN $graphs
RETURN uid AS feature_uid, collect(DISTINCT n.graph_uid) AS graphs
