"""A transcoder whose encoders and decoders stay on disk (`ondisk.DiskTensor`).

The small parameters (biases, thresholds, skip matrices) are held in memory in the compute dtype
on the compute device, like any module's. The big ones are per-layer tensors left in their files
(in the file's dtype), read as needed and cast on the way:
- encoders, `[F, d]` per layer: applied in chunks of `encoder_chunk` features, so the only copy
  in the compute dtype is one chunk;
- decoders, `[F, n_out, d]` per layer: only the rows of features that are active are read.
Peak memory is then about the model, one encoder chunk, the active features' decoders and the
working set. Graphs equal the eager transcoder's up to float rounding (reconstructions sum over
the active features only).
"""

from __future__ import annotations

import torch
from torch import nn

from circuitmap.transcoders.ondisk import DiskTensor
from circuitmap.transcoders.transcoder import (
    DEFAULT_BANDWIDTH,
    Transcoder,
    TranscoderConfig,
    TranscoderFormatError,
)

#: Features per encoder chunk: 4,096 x d_model 2,304 in bfloat16 is 18 MiB.
DEFAULT_ENCODER_CHUNK = 4096


class LazyTranscoder(Transcoder):
    """`Transcoder`'s interface over weights left on disk (read-only: no training)."""

    def __init__(
        self,
        config: TranscoderConfig,
        encoders: list[DiskTensor | torch.Tensor],
        decoders: list[DiskTensor | torch.Tensor],
        small: dict[str, torch.Tensor],
        dtype: torch.dtype = torch.float32,
        encoder_chunk: int = DEFAULT_ENCODER_CHUNK,
    ) -> None:
        nn.Module.__init__(self)
        self.config = config
        self.bandwidth = DEFAULT_BANDWIDTH
        self.encoder_chunk = encoder_chunk
        self._encoders, self._decoders = encoders, decoders
        L, F, d = config.n_layers, config.n_features, config.d_model
        expected = {"b_enc": (L, F), "b_dec": (L, d)}
        if config.activation == "jumprelu":
            expected["threshold"] = (L, F)
        if config.skip:
            expected["W_skip"] = (L, d, d)
        for name, shape in expected.items():
            if name not in small:
                raise TranscoderFormatError(f"missing tensor {name}")
            if tuple(small[name].shape) != shape:
                raise TranscoderFormatError(
                    f"{name} has shape {list(small[name].shape)}, expected {list(shape)}"
                )
            self.register_parameter(name, nn.Parameter(small[name].to(dtype), False))
        for name in ("threshold", "W_skip"):
            if name not in expected:
                self.register_parameter(name, None)
        for layer, (enc, dec) in enumerate(zip(encoders, decoders, strict=True)):
            if tuple(enc.shape) != (F, d):
                raise TranscoderFormatError(
                    f"encoder of layer {layer} has shape {list(enc.shape)}, expected {[F, d]}"
                )
            if tuple(dec.shape) != (F, self.n_out(layer), d):
                raise TranscoderFormatError(
                    f"W_dec.{layer} has shape {list(dec.shape)}, "
                    f"expected {[F, self.n_out(layer), d]}"
                )

    @property
    def lazy(self) -> bool:
        return True

    def disk_tensors(self) -> dict[str, DiskTensor | torch.Tensor]:
        """The encoders and decoders left on disk, by name (`W_enc.{l}`, `W_dec.{l}`)."""
        enc = {f"W_enc.{layer}": t for layer, t in enumerate(self._encoders)}
        return enc | {f"W_dec.{layer}": t for layer, t in enumerate(self._decoders)}

    def weight_bytes(self) -> tuple[int, int]:
        """(encoder bytes, decoder bytes) on disk."""

        def size(ts: list[torch.Tensor]) -> int:
            return sum(t.numel() * t.element_size() for t in ts)

        return size(self._encoders), size(self._decoders)

    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    # --- encoders ------------------------------------------------------------------------------

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        L, n = x.shape[0], x.shape[1]
        out = torch.empty(L, n, self.n_features, dtype=self.dtype, device=self.device)
        for layer in range(L):
            out[layer] = self.layer_pre_activations(x[layer], layer)
        return out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Activations `[L, n, F]`, one layer at a time (no `[L, n, F]` pre-activations)."""
        self._check_input(x)
        L, n = x.shape[0], x.shape[1]
        out = torch.empty(L, n, self.n_features, dtype=self.dtype, device=self.device)
        for layer in range(L):
            pre = self.layer_pre_activations(x[layer], layer)
            if self.config.activation == "jumprelu":
                out[layer] = pre * (pre > self.threshold[layer])
            elif self.config.activation == "relu":
                out[layer] = torch.relu(pre)
            else:
                values, indices = pre.topk(self.config.topk, dim=-1)
                out[layer] = torch.zeros_like(pre).scatter(-1, indices, torch.relu(values))
        return out

    def layer_pre_activations(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        x = x.to(device=self.device, dtype=self.dtype)
        enc, bias = self._encoders[layer], self.b_enc[layer]
        out = torch.empty(x.shape[0], self.n_features, dtype=self.dtype, device=self.device)
        for start in range(0, self.n_features, self.encoder_chunk):
            stop = min(start + self.encoder_chunk, self.n_features)
            chunk = self._cast(_rows(enc, start, stop))
            out[:, start:stop] = torch.addmm(bias[start:stop], x, chunk.T)
        return out

    def encoder_rows(self, layers: torch.Tensor, feature_ids: torch.Tensor) -> torch.Tensor:
        layers, feature_ids = layers.cpu(), feature_ids.cpu()
        out = torch.empty(len(layers), self.d_model, dtype=self.dtype, device=self.device)
        for layer in layers.unique().tolist():
            where = (layers == layer).nonzero().flatten()
            rows = _gather(self._encoders[layer], feature_ids[where])
            out[where.to(self.device)] = self._cast(rows)
        return out

    # --- decoders ------------------------------------------------------------------------------

    def decoder_vectors(self, layer: int, feature_ids, output: int | None = None) -> torch.Tensor:
        ids = torch.as_tensor(feature_ids, dtype=torch.long).cpu()
        return self._cast(_gather(self._decoders[layer], ids, output))

    def decode(self, acts: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """As `Transcoder.decode`, reading the decoder rows of active features only."""
        L, n, _ = acts.shape
        if self.n_layers != L:
            raise ValueError(f"expected activations for {self.n_layers} layers, got {L}")
        out = self.b_dec.unsqueeze(1).expand(L, n, self.d_model).clone()
        for layer in range(L):
            active = acts[layer].ne(0).any(0).nonzero().flatten()
            if len(active) == 0:
                continue
            w = self.decoder_vectors(layer, active)  # [a, k, d]
            k = w.shape[1]
            a = acts[layer][:, active].to(self.dtype)
            contrib = (a @ w.reshape(len(active), k * self.d_model)).view(n, k, -1)
            out[layer : layer + k] += contrib.transpose(0, 1)
        if self.W_skip is not None:
            if x is None:
                raise ValueError("this transcoder has a skip connection: pass x to decode()")
            out = out + torch.bmm(x.to(self.dtype), self.W_skip)
        return out

    def decode_contribution(self, acts: torch.Tensor, source: int, layer: int) -> torch.Tensor:
        active = acts.ne(0).any(0).nonzero().flatten()
        if len(active) == 0:
            return acts.new_zeros(acts.shape[0], self.d_model)
        rows = self.decoder_vectors(source, active, layer - source)
        return acts[:, active] @ rows

    def decoder_norms(self) -> torch.Tensor:
        norms = torch.empty(self.n_layers, self.n_features)
        for layer, w in enumerate(self._decoders):
            for start in range(0, self.n_features, self.encoder_chunk):
                chunk = _rows(w, start, start + self.encoder_chunk).float()
                norms[layer, start : start + len(chunk)] = chunk.pow(2).sum(dim=(1, 2)).sqrt()
        return norms.to(self.device)

    # --- what a lazy transcoder cannot do ----------------------------------------------------

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        raise TypeError("a lazily loaded transcoder is read-only: load it eagerly to train")

    def fold_scales(self, in_scale: torch.Tensor, out_scale: torch.Tensor) -> None:
        raise TypeError("a lazily loaded transcoder is read-only: load it eagerly to change it")

    def extra_repr(self) -> str:
        return super().extra_repr() + ", lazy=True"


def _rows(t: DiskTensor | torch.Tensor, start: int, stop: int) -> torch.Tensor:
    return t.rows(start, stop) if isinstance(t, DiskTensor) else t[start:stop]


def _gather(t: DiskTensor | torch.Tensor, ids: torch.Tensor, sub: int | None = None):
    if isinstance(t, DiskTensor):
        return t.gather(ids, sub)
    return t[ids] if sub is None else t[ids, sub]
