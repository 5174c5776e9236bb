"""Train a PLT or CLT on a model's activations over a corpus.

Loss per token, on inputs and targets normalised per layer to unit RMS per dimension (so the
coefficients do not depend on the model's activation scale):

    (1/d) sum_m ||y_hat_m - y_m||^2                         reconstruction
  + lambda_t  * sum_{l,i} tanh(c * ||W_dec_{l,i}|| * a_{l,i})   sparsity (||W_dec|| over all the
                                                               layers a feature writes to)
  + lambda_p  * sum_{l,i} ReLU(theta_{l,i} - h_{l,i}) * ||W_dec_{l,i}||   against dead features

The 1/d only rescales lambda so that one default suits models of any width. lambda_t ramps
linearly from 0 to `sparsity` over the first `lambda_warmup` of the steps; Adam, with the
learning rate decayed linearly to 0 over the last `lr_decay` of the steps. At save, the
normalisation is folded into the weights, so the saved transcoder maps raw activations to raw
activations (`Transcoder.fold_scales`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from circuitmap.transcoders.activations import (
    ActivationHarvester,
    TokenStream,
    read_corpus,
)
from circuitmap.transcoders.formats import save_transcoder
from circuitmap.transcoders.transcoder import Transcoder, TranscoderConfig

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved with the transcoder and checkpoints)."""

    kind: str = "clt"
    n_features: int = 1024
    activation: str = "jumprelu"
    topk: int | None = None
    input_site: str = "resid_mid"
    output_site: str = "mlp_out"
    skip: bool = False
    steps: int = 2000
    batch_tokens: int = 512
    lr: float = 1e-3
    lr_decay: float = 0.2
    sparsity: float = 0.005
    sparsity_c: float = 1.0
    lambda_warmup: float = 0.75
    preact: float = 3e-6
    bandwidth: float = 1.0
    threshold_init: float = 0.03
    buffer_tokens: int = 65536
    max_seq_len: int = 128
    harvest_batch: int = 32
    eval_tokens: int = 4096
    checkpoint_every: int = 500
    seed: int = 0
    model_name: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_tokens < 1 or self.n_features < 1:
            raise ValueError("steps, batch_tokens and n_features must be positive")
        if self.buffer_tokens < 2 * self.batch_tokens:
            raise ValueError("buffer_tokens must be at least twice batch_tokens")


@dataclass
class LayerMetrics:
    layer: int
    nmse: float  # MSE / variance of the output site, on held-out tokens
    l0: float  # mean active features per token at this layer
    dead_fraction: float  # features that never fired over the last 20% of training


@dataclass
class TrainResult:
    transcoder: Transcoder  # raw-activation units (scales folded in)
    layers: list[LayerMetrics]
    nmse: float  # over all layers: sum of squared errors / sum of variances
    l0: float  # mean over layers
    tokens_per_s: float  # training throughput (harvesting included)
    steps: int
    seconds: float
    eval_tokens: int
    history: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "nmse": self.nmse,
            "l0": self.l0,
            "tokens_per_s": self.tokens_per_s,
            "steps": self.steps,
            "seconds": self.seconds,
            "eval_tokens": self.eval_tokens,
            "layers": [asdict(m) for m in self.layers],
        }


@dataclass
class _Scales:
    """Per-layer normalisation, estimated on the first buffer (normalised units: unit RMS)."""

    x: torch.Tensor  # [L] RMS per dimension of the inputs
    y: torch.Tensor  # [L] RMS per dimension of the targets
    y_mean: torch.Tensor  # [L, d] mean target, normalised
    y_var: torch.Tensor  # [L] mean ||y - y_mean||^2, normalised

    @classmethod
    def estimate(cls, x: torch.Tensor, y: torch.Tensor) -> _Scales:
        d = x.shape[-1]
        sx = x.pow(2).sum(-1).mean(0).div(d).sqrt().clamp_min(1e-8)
        sy = y.pow(2).sum(-1).mean(0).div(d).sqrt().clamp_min(1e-8)
        yn = y / sy[None, :, None]
        mean = yn.mean(0)
        var = (yn - mean).pow(2).sum(-1).mean(0).clamp_min(1e-8)
        return cls(sx, sy, mean, var)

    def to(self, device) -> _Scales:
        return _Scales(*(t.to(device) for t in (self.x, self.y, self.y_mean, self.y_var)))


def train_transcoder(
    model: nn.Module,
    tokenizer,
    corpus: str | Path | Sequence[str],
    config: TrainConfig,
    out_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool = True,
) -> TrainResult:
    """Train on `corpus` (a text file, one prompt per line, or a list of prompts). With
    `out_dir`, checkpoints go there every `checkpoint_every` steps and the final transcoder is
    saved there in our format (the checkpoint is then removed). A run with the same settings
    resumes from a checkpoint: weights, optimiser state, scales and step are restored and the
    buffer is refilled (seeded by the step), so a resumed run is reproducible but not
    bit-identical to an uninterrupted one. Same seed and settings, no interruption: identical
    weights."""
    out = Path(out_dir) if out_dir is not None else None
    prompts = read_corpus(corpus)
    train_prompts, eval_prompts = _split(prompts, config.seed)
    harvester = ActivationHarvester(
        model,
        tokenizer,
        config.input_site,
        config.output_site,
        max_seq_len=config.max_seq_len,
        batch_size=config.harvest_batch,
    )
    n_layers, d_model = harvester.n_layers, harvester.d_model
    tc_config = TranscoderConfig(
        kind=config.kind,
        n_layers=n_layers,
        d_model=d_model,
        n_features=config.n_features,
        activation=config.activation,
        topk=config.topk,
        input_site=config.input_site,
        output_site=config.output_site,
        skip=config.skip,
        model_name=config.model_name,
        name=config.name,
    )
    device = next(model.parameters()).device
    tc = Transcoder(tc_config, device=device)
    tc.bandwidth = config.bandwidth
    gen = torch.Generator().manual_seed(config.seed)
    tc.init_weights(gen)
    if tc.threshold is not None:
        with torch.no_grad():
            tc.threshold.fill_(config.threshold_init)
    optim = torch.optim.Adam(tc.parameters(), lr=config.lr)
    ckpt = _load_checkpoint(out, config) if (out and resume) else None
    start = 0
    if ckpt is not None:
        tc.load_state_dict(ckpt["model"])
        optim.load_state_dict(ckpt["optim"])
        scales = _Scales(**ckpt["scales"]).to(device)
        start = ckpt["step"]
    stream = TokenStream(harvester, train_prompts, config.buffer_tokens, seed=config.seed + start)
    if ckpt is None:
        scales = _Scales.estimate(stream.x, stream.y).to(device)
        _init_biases(tc, stream.x[:4096], scales, device)
    schedule = _Schedule(config)
    fired = torch.zeros(n_layers, config.n_features, dtype=torch.bool, device=device)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    with _progress_bar(progress) as bar:
        task = bar.add_task("training", total=config.steps, completed=start, stats="")
        for step in range(start, config.steps):
            x, y = stream.sample(config.batch_tokens)
            stats, acts = _step(tc, optim, x, y, scales, schedule, step, config, device)
            if step >= int(0.8 * config.steps):
                fired |= (acts > 0).any(dim=1)
            if step % 10 == 0 or step == config.steps - 1:
                history.append({"step": step, **stats})
                bar.update(
                    task,
                    stats=(
                        f"loss {stats['loss']:.4g}  L0 {stats['l0']:.1f}  "
                        f"nmse {stats['nmse']:.3f}  λ {stats['lambda']:.3g}"
                    ),
                )
            bar.update(task, advance=1)
            done = step + 1
            if out and config.checkpoint_every and done % config.checkpoint_every == 0:
                _save_checkpoint(out, tc, optim, scales, done, config)
    seconds = time.perf_counter() - t0
    trained = config.steps - start
    final = copy.deepcopy(tc)
    final.fold_scales(scales.x, scales.y)
    final.bandwidth = tc.bandwidth
    eval_x, eval_y = _eval_tokens(harvester, eval_prompts or train_prompts, config.eval_tokens)
    layers = _evaluate(final, eval_x, eval_y, fired if trained else None)
    sse = sum(m.nmse * v for m, v in zip(layers, _raw_var(eval_y), strict=True))
    result = TrainResult(
        transcoder=final,
        layers=layers,
        nmse=float(sse / sum(_raw_var(eval_y))),
        l0=float(sum(m.l0 for m in layers) / len(layers)),
        tokens_per_s=trained * config.batch_tokens / seconds if trained else 0.0,
        steps=config.steps,
        seconds=seconds,
        eval_tokens=len(eval_x),
        history=history,
    )
    if out:
        metadata = {"training": asdict(config), "metrics": result.summary()}
        save_transcoder(final, out, metadata=metadata)
        (out / CHECKPOINT).unlink(missing_ok=True)
    return result


# --- the step ----------------------------------------------------------------------------------


@dataclass
class _Schedule:
    config: TrainConfig

    def sparsity(self, step: int) -> float:
        ramp = max(1, int(self.config.lambda_warmup * self.config.steps))
        return self.config.sparsity * min(1.0, (step + 1) / ramp)

    def lr(self, step: int) -> float:
        c = self.config
        decay_start = int((1 - c.lr_decay) * c.steps)
        if step < decay_start:
            return c.lr
        return c.lr * (c.steps - step) / max(1, c.steps - decay_start)


def _step(tc, optim, x, y, scales, schedule, step, config, device):
    x = (x.to(device) / scales.x[None, :, None]).transpose(0, 1)  # [L, n, d]
    y = (y.to(device) / scales.y[None, :, None]).transpose(0, 1)
    d = x.shape[-1]
    for group in optim.param_groups:
        group["lr"] = schedule.lr(step)
    pre = tc.pre_activations(x)
    acts = tc.activate(pre)
    recon = tc.decode(acts, x)
    err = (recon - y).pow(2).sum(-1)  # [L, n]
    mse = err.sum(0).mean() / d
    norms = tc.decoder_norms()[:, None, :]  # [L, 1, F]
    lam = schedule.sparsity(step)
    loss = mse
    if config.activation != "topk":
        sparsity = torch.tanh(config.sparsity_c * norms * acts).sum((0, 2)).mean()
        theta = tc.threshold[:, None, :] if tc.threshold is not None else torch.zeros_like(norms)
        preact = (torch.relu(theta - pre) * norms).sum((0, 2)).mean()
        loss = loss + lam * sparsity + config.preact * preact
    optim.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(tc.parameters(), 1.0)
    optim.step()
    if tc.threshold is not None:
        with torch.no_grad():
            tc.threshold.clamp_(min=1e-4)
    with torch.no_grad():
        nmse = (err.mean(1) / scales.y_var).mean()
        l0 = (acts > 0).sum(-1).float().mean()
    stats = {"loss": loss.item(), "mse": mse.item(), "nmse": nmse.item(), "l0": l0.item()}
    return stats | {"lambda": lam}, acts.detach()


@torch.no_grad()
def _init_biases(tc: Transcoder, x: torch.Tensor, scales: _Scales, device) -> None:
    """b_dec = mean target (the best constant); b_enc so each feature's pre-activations are
    centred just below the threshold on data: it starts active on a minority of tokens and inside
    the straight-through window, whatever the mean of the residual stream."""
    xn = (x.to(device) / scales.x[None, :, None]).transpose(0, 1)
    pre = tc.pre_activations(xn)
    theta = tc.threshold if tc.threshold is not None else torch.zeros_like(tc.b_enc)
    tc.b_enc.sub_(pre.mean(1)).add_(theta).sub_(pre.std(1))
    tc.b_dec.copy_(scales.y_mean)


# --- evaluation ----------------------------------------------------------------------------------


def _split(prompts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Hold out 5% of the prompts (seeded) for evaluation when there are at least 20."""
    if len(prompts) < 20:
        return prompts, []
    g = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(len(prompts), generator=g).tolist()
    n_eval = max(1, len(prompts) // 20)
    return [prompts[i] for i in perm[n_eval:]], [prompts[i] for i in perm[:n_eval]]


def _eval_tokens(harvester, prompts, max_tokens):
    xs, ys, total = [], [], 0
    step = harvester.batch_size
    for start in range(0, len(prompts), step):
        x, y = harvester.harvest(prompts[start : start + step])
        xs.append(x)
        ys.append(y)
        total += len(x)
        if total >= max_tokens:
            break
    return torch.cat(xs)[:max_tokens], torch.cat(ys)[:max_tokens]


def _raw_var(y: torch.Tensor) -> list[float]:
    return (y - y.mean(0)).pow(2).sum(-1).mean(0).tolist()


@torch.no_grad()
def _evaluate(tc, x, y, fired) -> list[LayerMetrics]:
    device = tc.W_enc.device
    errs, l0s = [], []
    for start in range(0, len(x), 1024):
        xb = x[start : start + 1024].to(device).transpose(0, 1)
        yb = y[start : start + 1024].to(device).transpose(0, 1)
        recon, acts = tc(xb)
        errs.append((recon - yb).pow(2).sum(-1).sum(1))
        l0s.append((acts > 0).sum(-1).float().sum(1))
    n = len(x)
    sse = torch.stack(errs).sum(0) / n
    l0 = torch.stack(l0s).sum(0) / n
    var = _raw_var(y)
    dead = (~fired).float().mean(1).tolist() if fired is not None else [math.nan] * tc.n_layers
    return [
        LayerMetrics(i, float(sse[i] / max(var[i], 1e-12)), float(l0[i]), dead[i])
        for i in range(tc.n_layers)
    ]


# --- checkpoints and display ---------------------------------------------------------------------


def _save_checkpoint(out: Path, tc, optim, scales: _Scales, step: int, config: TrainConfig):
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (CHECKPOINT + ".tmp")
    torch.save(
        {
            "step": step,
            "model": tc.state_dict(),
            "optim": optim.state_dict(),
            "scales": asdict(scales.to("cpu")),
            "config": asdict(config),
        },
        tmp,
    )
    tmp.replace(out / CHECKPOINT)


def _load_checkpoint(out: Path, config: TrainConfig) -> dict | None:
    path = out / CHECKPOINT
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("config") != asdict(config):
        raise ValueError(
            f"{path} was written by a run with other settings: use another --out or delete it"
        )
    return ckpt


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        disable=not enabled,
    )
