// The graph as columns (one array per node property) and its edges as typed arrays, with
// compressed in/out adjacency (CSR) so that a node's edges are found without scanning them all.
// Each edge's share of its target's input (|weight| / sum of |weight| into the target) is
// derived here rather than sent.

function decode(b64, Type) {
  const bin = atob(b64 || "");
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}

export function columnsOf(data) {
  const nodes = data.nodes;
  const n = nodes.id.length;
  const indexType = data.edges.index_bytes === 2 ? Uint16Array : Int32Array;
  const num = (values) => Float64Array.from(values, (v) => (v === null ? NaN : v));
  const graph = {
    n,
    id: nodes.id,
    kind: nodes.kind,
    layer: Int32Array.from(nodes.layer),
    position: Int32Array.from(nodes.position),
    token: nodes.token,
    label: nodes.label,
    caption: nodes.caption,
    featureUid: nodes.feature_uid,
    activation: num(nodes.activation),
    influence: num(nodes.influence),
    probability: num(nodes.probability),
    tokens: data.tokens,
    nLayers: data.n_layers,
    source: decode(data.edges.source, indexType),
    target: decode(data.edges.target, indexType),
    weight: decode(data.edges.weight, Float32Array),
  };
  graph.share = shares(n, graph.target, graph.weight);
  graph.index = new Map(graph.id.map((id, i) => [id, i]));
  return graph;
}

function shares(n, target, weight) {
  const into = new Float64Array(n);
  for (let e = 0; e < weight.length; e += 1) into[target[e]] += Math.abs(weight[e]);
  const share = new Float32Array(weight.length);
  for (let e = 0; e < weight.length; e += 1) {
    const total = into[target[e]];
    share[e] = total > 0 ? Math.abs(weight[e]) / total : 0;
  }
  return share;
}

function csr(n, keys) {
  const start = new Int32Array(n + 1);
  for (let e = 0; e < keys.length; e += 1) start[keys[e] + 1] += 1;
  for (let i = 0; i < n; i += 1) start[i + 1] += start[i];
  const fill = start.slice(0, n);
  const edges = new Int32Array(keys.length);
  for (let e = 0; e < keys.length; e += 1) edges[fill[keys[e]]++] = e;
  return { start, edges };
}

export function adjacency(graph) {
  return { inputs: csr(graph.n, graph.target), outputs: csr(graph.n, graph.source) };
}

export function edgesOf(adj, i) {
  const out = [];
  for (const side of [adj.inputs, adj.outputs]) {
    for (let k = side.start[i]; k < side.start[i + 1]; k += 1) out.push(side.edges[k]);
  }
  return out;
}

export function degree(adj, i) {
  return [
    adj.inputs.start[i + 1] - adj.inputs.start[i],
    adj.outputs.start[i + 1] - adj.outputs.start[i],
  ];
}
