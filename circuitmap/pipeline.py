"""Prompt -> pruned `GraphRecord`: the one entry point storage and the CLI call.

    builder = GraphBuilder(model, transcoder, GraphSettings(), tokenizer=tokenizer)
    record = builder.build("The capital of the state containing Dallas is")

`GraphBuilder.from_paths(model_path_or_hub_name, transcoder_dir, settings)` loads both.
Node influences in the record follow the Neuronpedia / circuit-tracer convention: the cumulative
share of total logit influence held by the nodes ranked up to and including this one (small =
influential); logit nodes carry their probability instead.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from circuitmap import __version__
from circuitmap.attribution import AttributionGraph, attribute
from circuitmap.memory import (
    GIB,
    MemoryEstimate,
    available_bytes,
    bound_cpu_allocator,
    estimate,
    fit_compute_batch,
    release_freed_memory,
)
from circuitmap.models import load_model, load_tokenizer, resolve_dtype, tokenize
from circuitmap.pruning import PruneResult, prune
from circuitmap.records import (
    GraphRecord,
    NodeRecord,
    error_node_id,
    feature_node_id,
    logit_node_id,
    token_node_id,
)
from circuitmap.replacement import ReplacementModel
from circuitmap.transcoders import Transcoder, load_transcoder


@dataclass
class GraphSettings:
    """How a graph is computed and pruned (defaults: circuit-tracer's, batch size its CLI's)."""

    max_n_logits: int = 10
    desired_logit_prob: float = 0.95
    batch_size: int = 256
    max_feature_nodes: int | None = None
    node_threshold: float = 0.8
    edge_threshold: float = 0.98
    dtype: str = "float32"
    device: str = "cpu"
    # Machine-side settings (they do not change the graph): how transcoders are loaded (auto:
    # left on disk and read as needed when large) and the memory a graph may take (None: what
    # is free). They enter `to_dict` (the graph's recorded settings) only when not at their
    # defaults.
    transcoder_loading: str = "auto"
    memory_limit_gb: float | None = None

    def __post_init__(self) -> None:
        resolve_dtype(self.dtype)
        checks = [
            (
                self.transcoder_loading in TRANSCODER_LOADING,
                f"transcoder_loading must be one of {', '.join(TRANSCODER_LOADING)}",
            ),
            (
                self.memory_limit_gb is None or self.memory_limit_gb > 0,
                "memory_limit_gb must be positive",
            ),
            (self.max_n_logits >= 1, "max_n_logits must be at least 1"),
            (0 < self.desired_logit_prob <= 1, "desired_logit_prob must be in (0, 1]"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (
                self.max_feature_nodes is None or self.max_feature_nodes >= 0,
                "max_feature_nodes < 0",
            ),
            (0 <= self.node_threshold <= 1, "node_threshold must be in [0, 1]"),
            (0 <= self.edge_threshold <= 1, "edge_threshold must be in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for name, default in _MACHINE_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        return data

    @property
    def lazy(self) -> bool | None:
        return TRANSCODER_LOADING[self.transcoder_loading]

    def memory_limit_bytes(self) -> int:
        if self.memory_limit_gb is not None:
            return int(self.memory_limit_gb * GIB)
        return available_bytes(self.device)


TRANSCODER_LOADING = {"auto": None, "eager": False, "lazy": True}
_MACHINE_DEFAULTS = {"transcoder_loading": "auto", "memory_limit_gb": None}


@dataclass
class GraphResult:
    """A built graph with its unpruned form, for callers that want more than the record."""

    record: GraphRecord
    graph: AttributionGraph
    pruned: PruneResult
    seconds: float


class GraphBuilder:
    """Builds pruned attribution graphs for prompts with one model and one transcoder."""

    def __init__(
        self,
        model: nn.Module,
        transcoder: Transcoder,
        settings: GraphSettings | None = None,
        *,
        tokenizer=None,
        model_name: str | None = None,
        transcoder_name: str | None = None,
        sources: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings or GraphSettings()
        check_device(self.settings.device)
        bound_cpu_allocator()  # RSS follows the tensors held (see circuitmap.memory)
        dtype = resolve_dtype(self.settings.dtype)
        model = model.to(self.settings.device, dtype).eval()
        transcoder = transcoder.to(self.settings.device, dtype)
        if tokenizer is None:
            tokenizer = load_tokenizer(model.name_or_path)
        self.tokenizer = tokenizer
        self.rm = ReplacementModel(model, transcoder)
        self.model_name = model_name or model_identity(str(model.name_or_path))
        self.transcoder_name = transcoder_name or transcoder.config.name or "transcoder"
        # Where the weights were loaded from (graph metadata: what reproduces the graph here).
        self.sources = sources or {}

    @classmethod
    def from_paths(
        cls, model: str, transcoder: str, settings: GraphSettings | None = None
    ) -> GraphBuilder:
        settings = settings or GraphSettings()
        check_device(settings.device)
        hf_model, tokenizer = load_model(model, settings.device, settings.dtype)
        tc = load_transcoder(transcoder, settings.device, settings.dtype, lazy=settings.lazy)
        return cls(
            hf_model, tc, settings, tokenizer=tokenizer,
            transcoder_name=tc.config.name or Path(transcoder).resolve().name,
            sources={"model_path": _source(model), "transcoder_path": _source(transcoder)},
        )  # fmt: skip

    def tokenize(self, prompt: str) -> torch.Tensor:
        ids = tokenize(self.tokenizer, prompt)
        n_ctx = self.rm.adapter.n_ctx
        if len(ids) > n_ctx:
            raise ValueError(
                f"prompt has {len(ids)} tokens, longer than the model's context of {n_ctx}"
            )
        return ids

    def build(self, prompt: str) -> GraphRecord:
        return self.build_full(prompt).record

    def build_full(self, prompt: str) -> GraphResult:
        s = self.settings
        start = time.perf_counter()
        ids = self.tokenize(prompt)
        self.check_memory(len(ids), n_active_features=0)  # the forward pass and its record
        run = self.rm.run(ids, last_logits_only=True, lean=True)
        release_freed_memory()  # the model's per-layer temporaries
        n_active = int(run.activations.count_nonzero())
        need = self.check_memory(len(ids), n_active_features=n_active)
        graph = attribute(
            self.rm,
            ids,
            max_n_logits=s.max_n_logits,
            desired_logit_prob=s.desired_logit_prob,
            batch_size=s.batch_size,
            max_feature_nodes=s.max_feature_nodes,
            run=run,
            compute_batch_size=need.compute_batch_size,
        )
        del run
        release_freed_memory()
        pruned = prune(graph, s.node_threshold, s.edge_threshold)
        record = self._record(prompt, graph, pruned)
        seconds = time.perf_counter() - start
        record.metadata["seconds"] = round(seconds, 4)
        return GraphResult(record, graph, pruned, seconds)

    def check_memory(self, n_tokens: int, n_active_features: int | None) -> MemoryEstimate:
        """The graph's memory estimate, pulling back as many targets at once as fit (at most
        `batch_size`; fewer leave the graph the same); raises `MemoryBudgetError` (saying what
        to change) when even one at a time exceeds the settings' limit or, without one, the
        memory free now."""
        s = self.settings
        limit = s.memory_limit_bytes()

        def need(compute_batch_size: int) -> MemoryEstimate:
            return estimate(
                self.rm,
                n_tokens,
                batch_size=s.batch_size,
                compute_batch_size=compute_batch_size,
                max_feature_nodes=s.max_feature_nodes,
                max_n_logits=s.max_n_logits,
                n_active_features=n_active_features,
            )

        return fit_compute_batch(
            need, s.batch_size, limit, max_feature_nodes=s.max_feature_nodes, dtype=s.dtype
        )

    def _record(self, prompt: str, graph: AttributionGraph, pruned: PruneResult) -> GraphRecord:
        L, n = graph.n_layers, graph.n_pos
        texts = [self.tokenizer.decode([t]) for t in graph.input_ids.tolist()]
        cumulative = pruned.cumulative_scores.tolist()
        feats = graph.active_features[graph.selected_features].tolist()
        acts = graph.activation_values[graph.selected_features].tolist()
        token_ids = graph.input_ids.tolist()
        nodes: list[NodeRecord] = []
        for i in pruned.node_mask.nonzero().flatten().tolist():
            if i < graph.error_offset:
                layer, pos, index = feats[i]
                node = NodeRecord(
                    feature_node_id(layer, index, pos), "feature", layer, pos, texts[pos],
                    feature_index=index, activation=acts[i], influence=cumulative[i],
                )  # fmt: skip
            elif i < graph.token_offset:
                layer, pos = divmod(i - graph.error_offset, n)
                node = NodeRecord(
                    error_node_id(layer, pos), "error", layer, pos, texts[pos],
                    influence=cumulative[i],
                )  # fmt: skip
            elif i < graph.logit_offset:
                pos = i - graph.token_offset
                node = NodeRecord(
                    token_node_id(token_ids[pos], pos), "token", -1, pos, texts[pos],
                    feature_index=token_ids[pos], influence=cumulative[i],
                )  # fmt: skip
            else:
                j = i - graph.logit_offset
                tok, prob = int(graph.logit_tokens[j]), float(graph.logit_probabilities[j])
                text = self.tokenizer.decode([tok])
                node = NodeRecord(
                    logit_node_id(L, tok, n - 1), "logit", L, n - 1, text, feature_index=tok,
                    probability=prob, label=f'Output "{text}" (p={prob:.3f})',
                )  # fmt: skip
            nodes.append(node)
        kept = pruned.node_mask.nonzero().flatten()
        position = torch.full((graph.n_nodes,), -1, dtype=torch.long)
        position[kept] = torch.arange(len(kept))
        rows, targets, sources = pruned.edges()
        weights = graph.rows[rows, sources]
        s = self.settings
        return GraphRecord(
            prompt=prompt,
            prompt_tokens=texts,
            model=self.model_name,
            transcoder=self.transcoder_name,
            nodes=nodes,
            edge_source=position[sources].numpy().astype(np.int64),
            edge_target=position[targets].numpy().astype(np.int64),
            edge_weight=weights.numpy().astype(np.float32),
            n_layers=L,
            scores={
                "replacement": pruned.replacement_score,
                "completeness": pruned.completeness_score,
            },
            settings=s.to_dict(),
            metadata={
                "tool": "circuitmap",
                "tool_version": __version__,
                "model_family": self.rm.adapter.family,
                "n_active_features": int(graph.active_features.shape[0]),
                "n_nodes_unpruned": graph.n_nodes,
                "n_edges_unpruned": int(torch.count_nonzero(graph.rows)),
                **self.sources,
            },
        )


def check_device(device: str) -> None:
    """A one-line error for a device this machine does not have (before anything is loaded)."""
    try:
        kind = torch.device(device).type
    except RuntimeError:
        kind = device
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA device is available")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: use cpu or cuda (cuda:N)")


def model_identity(name_or_path: str) -> str:
    """A model's uid: a hub name as given, a local directory by its own name, so the same model
    has the same uid on every machine and no local path leaks into shared graphs."""
    path = Path(name_or_path)
    return path.resolve().name if path.is_dir() else name_or_path


def _source(name_or_path: str) -> str:
    path = Path(name_or_path)
    return str(path.resolve()) if path.exists() else name_or_path
