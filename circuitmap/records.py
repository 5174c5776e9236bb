"""Plain records of a pruned attribution graph: the hand-off from the science package to storage.

A `GraphRecord` is what `circuitmap` produces (from a computed graph or an imported graph JSON file)
and what `ingest` writes to Neo4j. It carries no tensors and knows nothing of any database, so every
consumer (the Neo4j writer, the JSON exporter, tests) reads one shape.

Node ids follow the Neuronpedia / circuit-tracer graph JSON convention, made collision-free:
  token   "E_{token_id}_{pos}"
  feature "{layer}_{feature_index}_{pos}"
  error   "{layer}_-1_{pos}"           (older files use "0_{layer}_{pos}"; accepted on import only)
  logit   "{n_layers}_{token_id}_{pos}"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

NodeKind = Literal["token", "feature", "error", "logit"]
NODE_KINDS: tuple[NodeKind, ...] = ("token", "feature", "error", "logit")


def token_node_id(token_id: int, position: int) -> str:
    return f"E_{token_id}_{position}"


def feature_node_id(layer: int, feature_index: int, position: int) -> str:
    return f"{layer}_{feature_index}_{position}"


def error_node_id(layer: int, position: int) -> str:
    return f"{layer}_-1_{position}"


def logit_node_id(n_layers: int, token_id: int, position: int) -> str:
    return f"{n_layers}_{token_id}_{position}"


@dataclass
class NodeRecord:
    """One node of one graph.

    `layer` is the transformer layer for features and errors, -1 for tokens (the embedding row) and
    `n_layers` for logits. `feature_index` is the transcoder feature for features, the token id for
    tokens and logits, and None for errors. `token` is the text of the token at `position` (for a
    logit: the predicted token's text).
    """

    node_id: str
    kind: NodeKind
    layer: int
    position: int
    token: str
    feature_index: int | None = None
    activation: float | None = None
    influence: float | None = None
    probability: float | None = None  # logits only
    label: str = ""  # human-readable description (Neuronpedia "clerp")


@dataclass
class GraphRecord:
    """A pruned attribution graph for one prompt.

    Edges are parallel arrays of node indices into `nodes` (source -> target, direct linear effect
    of source on target) so that graphs with 10^5 edges stay cheap to hold and to write.
    """

    prompt: str
    prompt_tokens: list[str]
    model: str  # model identity, e.g. a hub name or a local directory name
    transcoder: str  # transcoder set identity ("scan" in Neuronpedia terms)
    nodes: list[NodeRecord]
    edge_source: np.ndarray  # int64 [n_edges] index into nodes
    edge_target: np.ndarray  # int64 [n_edges] index into nodes
    edge_weight: np.ndarray  # float32 [n_edges]
    n_layers: int
    scores: dict[str, float] = field(default_factory=dict)  # replacement, completeness
    settings: dict[str, object] = field(default_factory=dict)  # generation and pruning settings
    metadata: dict[str, object] = field(default_factory=dict)  # tool version, source file, ...

    @property
    def n_edges(self) -> int:
        return int(self.edge_weight.shape[0])

    def node_index(self) -> dict[str, int]:
        return {node.node_id: i for i, node in enumerate(self.nodes)}

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency; storage calls this before writing."""
        ids = [n.node_id for n in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("graph has duplicate node ids")
        for node in self.nodes:
            if node.kind not in NODE_KINDS:
                raise ValueError(f"node {node.node_id!r} has unknown kind {node.kind!r}")
        n = len(self.nodes)
        lengths = {len(self.edge_source), len(self.edge_target), len(self.edge_weight)}
        if len(lengths) != 1:
            raise ValueError("edge arrays differ in length")
        if self.n_edges and (
            min(self.edge_source.min(), self.edge_target.min()) < 0
            or max(self.edge_source.max(), self.edge_target.max()) >= n
        ):
            raise ValueError("edge refers to a node index out of range")
        if self.n_edges and not np.isfinite(self.edge_weight).all():
            raise ValueError("graph has non-finite edge weights")
