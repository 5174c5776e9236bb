"""Are two attribution graphs of the same prompt the same graph? (circuitmap vs circuit-tracer)

Both sides are plain dicts of CPU tensors (what `bench/attribution.py`'s workers save):
`input_tokens [n]`, `active_features [K, 3]` (layer, pos, idx), `activation_values [K]`,
`selected_features [k]` (indices into active_features: the feature nodes), `logit_token_ids [m]`,
`logit_probabilities [m]`, `adjacency [N, N]` in circuit-tracer's layout `[target, source]`
with nodes ordered features (selected, in active_features order), errors (layer-major, then
position), tokens, logits.

Equal means: same input tokens, same logit tokens in the same order, same set of active features
and of selected features, and edge weights that agree: `rel_max = max|A - B| / max|B|` over the
whole adjacency (B the reference) at most `tolerance` (1e-4). We also report the elementwise
relative difference `max |a - b| / |b|` over edges with `|b| > 1e-3 * max|B|` (the edges that
survive any sensible pruning), which is the stricter figure for large edges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

TOLERANCE = 1e-4
LARGE_EDGE = 1e-3  # "large" edges: |b| above this fraction of the largest |b|


@dataclass
class Equality:
    same_tokens: bool
    same_logits: bool
    same_active_features: bool
    same_selected_features: bool
    n_nodes: int
    n_edges: int  # nonzero edges of the reference
    rel_max: float | None = None  # max |a-b| / max |b|
    rel_large: float | None = None  # max |a-b|/|b| over edges with |b| > LARGE_EDGE * max|b|
    max_abs: float | None = None
    worst_edge: str = ""  # where rel_max is attained, as "target <- source" node names
    prob_max_abs: float = 0.0
    activation_rel_max: float | None = None
    feature_diff: dict[str, list] = field(default_factory=dict)  # only-in-ours / only-in-peer
    passed: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not (self.same_tokens and self.same_logits):
            return "FAIL: different input or logit tokens"
        if not (self.same_active_features and self.same_selected_features):
            return f"FAIL: different feature nodes {self.feature_diff}"
        verdict = "ok" if self.passed else "FAIL"
        return (
            f"{verdict}: rel_max {self.rel_max:.2e}, large-edge rel {self.rel_large:.2e}, "
            f"worst {self.worst_edge}"
        )


def _keys(features: torch.Tensor) -> list[tuple[int, int, int]]:
    return [tuple(row) for row in features.tolist()]


def node_names(graph: dict, n_layers: int) -> list[str]:
    """Readable names of the adjacency's nodes, in its order."""
    feats = graph["active_features"][graph["selected_features"]].tolist()
    n = len(graph["input_tokens"])
    names = [f"feature L{layer} p{pos} #{idx}" for layer, pos, idx in feats]
    names += [f"error L{layer} p{pos}" for layer in range(n_layers) for pos in range(n)]
    names += [f"token p{pos}" for pos in range(n)]
    names += [f"logit {t}" for t in graph["logit_token_ids"].tolist()]
    return names


def compare(ours: dict, peer: dict, n_layers: int, tolerance: float = TOLERANCE) -> Equality:
    """Compare our graph to the reference (circuit-tracer's) graph of the same prompt."""
    b = peer["adjacency"].double()
    eq = Equality(
        same_tokens=torch.equal(ours["input_tokens"], peer["input_tokens"]),
        same_logits=torch.equal(ours["logit_token_ids"], peer["logit_token_ids"]),
        same_active_features=False,
        same_selected_features=False,
        n_nodes=int(b.shape[0]),
        n_edges=int((b != 0).sum()),
    )
    if eq.same_logits:
        diff = ours["logit_probabilities"].double() - peer["logit_probabilities"].double()
        eq.prob_max_abs = float(diff.abs().max())
    ours_all, peer_all = _keys(ours["active_features"]), _keys(peer["active_features"])
    eq.same_active_features = set(ours_all) == set(peer_all)
    if not eq.same_active_features:
        eq.feature_diff = {
            "only_ours": sorted(set(ours_all) - set(peer_all))[:10],
            "only_peer": sorted(set(peer_all) - set(ours_all))[:10],
        }
    ours_sel = [ours_all[i] for i in ours["selected_features"].tolist()]
    peer_sel = [peer_all[i] for i in peer["selected_features"].tolist()]
    eq.same_selected_features = set(ours_sel) == set(peer_sel)
    if not eq.same_selected_features and eq.same_active_features:
        eq.feature_diff = {
            "selected_only_ours": sorted(set(ours_sel) - set(peer_sel))[:10],
            "selected_only_peer": sorted(set(peer_sel) - set(ours_sel))[:10],
        }
    if not (eq.same_tokens and eq.same_logits and eq.same_selected_features):
        return eq

    ours_values = dict(zip(ours_all, ours["activation_values"].double().tolist(), strict=True))
    peer_values = peer["activation_values"].double()
    mine = torch.tensor([ours_values[key] for key in peer_all], dtype=torch.float64)
    eq.activation_rel_max = float((mine - peer_values).abs().max() / peer_values.abs().max())

    # Reorder our nodes into the reference's order: features by key, the rest share one layout.
    position = {key: i for i, key in enumerate(ours_sel)}
    k = len(peer_sel)
    perm = torch.tensor([position[key] for key in peer_sel] + list(range(k, eq.n_nodes)))
    a = ours["adjacency"].double()[perm][:, perm]
    diff = (a - b).abs()
    scale = b.abs().max()
    eq.max_abs = float(diff.max())
    eq.rel_max = float(diff.max() / scale)
    large = b.abs() > LARGE_EDGE * scale
    eq.rel_large = float((diff[large] / b.abs()[large]).max()) if large.any() else 0.0
    target, source = divmod(int(diff.argmax()), eq.n_nodes)
    names = node_names(peer, n_layers)
    eq.worst_edge = f"{names[target]} <- {names[source]}"
    eq.passed = eq.same_active_features and eq.rel_max <= tolerance
    return eq
