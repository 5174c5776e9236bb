"""A random model of gemma-2-2b's shape and transcoders of GemmaScope's width, written to disk.

Model: `Gemma2ForCausalLM` with gemma-2-2b's configuration (d_model 2,304, 8 query and 4 key-value
heads of 256, MLP 9,216, vocabulary 256,000, softcaps, sliding window) and random weights, in
bfloat16, with `n_layers` layers (26 is the real depth; fewer layers of the same width time
faster on a CPU). Word-level tokenizer `w0 .. w255995` (one token each), as in
`bench/fixtures.py`.

Transcoders (circuit-tracer's formats, bfloat16), calibrated as `bench/fixtures.py` does: random
unit encoders, JumpReLU thresholds at the (1 - l0/F) quantile of each feature's pre-activation
over calibration tokens, decoders random unit vectors scaled so `l0` typical activations
reconstruct the MLP output's size, thresholds nudged off the benchmark prompts' pre-activations.
- case "a": a per-layer transcoder set (PLT), 16,384 features per layer (GemmaScope's width),
  reading `mlp.hook_in` and writing `mlp.hook_out`;
- case "b": a cross-layer transcoder, 16,384 features per layer, reading `hook_resid_mid`; at
  26 layers its decoders are 26.5 GB in bfloat16. Files are written layer by layer and decoder
  files in slices, so building never holds more than one layer's decoder block in memory.
  Decoder vectors of a layer's output layers are row-rotations of one random bank per layer
  (cheap to write; every feature still gets a different vector per output layer).

`live`: when set, only that many random features per layer can fire (the others get threshold
1e6 and zero encoder and decoder rows, written as holes: files keep their full size but only
the live rows take disk). This lets case b's 26.5 GB of decoders exist on a disk that writes
67 MB/s; a tool that reads the decoders whole still has to hold all 26.5 GB, one that reads
active rows reads only live ones. Thresholds are calibrated among the live features.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml

from bench.fixtures import (
    World,
    build_tokenizer,
    nudge_thresholds,
    random_prompts,
    save_portable_tokenizer,
    site_activations,
)
from circuitmap.transcoders import Transcoder, TranscoderConfig

VOCAB = 256_000


#: gemma-2-2b's widths; "gemma-2-2b-v32k" the same with a 32k vocabulary (circuit-tracer's
#: copies of a 256k unembedding in float32 pass 10 GiB even at 2 layers); "smoke" is a small
#: stand-in to check the benchmark's plumbing.
SHAPES = {
    "gemma-2-2b": {"d_model": 2304, "d_mlp": 9216, "heads": (8, 4, 256), "vocab": VOCAB},
    "gemma-2-2b-v32k": {"d_model": 2304, "d_mlp": 9216, "heads": (8, 4, 256), "vocab": 32768},
    "smoke": {"d_model": 128, "d_mlp": 512, "heads": (4, 2, 32), "vocab": 1000},
}


@dataclass(frozen=True)
class GemmaSpec:
    case: str  # "a" (PLT) | "b" (CLT)
    n_layers: int = 26
    n_features: int = 16384
    prompt_lengths: tuple[int, ...] = (16, 64)  # words (BOS added)
    l0: int = 24
    seed: int = 0
    shape: str = "gemma-2-2b"
    live: int | None = None  # features per layer that can fire (None: all); see module doc

    @property
    def d_model(self) -> int:
        return SHAPES[self.shape]["d_model"]

    @property
    def vocab(self) -> int:  # words; the tokenizer adds 4 special tokens
        return SHAPES[self.shape]["vocab"] - 4

    @property
    def name(self) -> str:
        return f"{self.shape}-{self.case}-L{self.n_layers}"

    @property
    def kind(self) -> str:
        return "plt" if self.case == "a" else "clt"

    @property
    def input_site(self) -> str:
        """GemmaScope's PLTs read the pre-MLP norm's unweighted output; CLTs resid_mid."""
        return "mlp_in_unweighted" if self.kind == "plt" else "resid_mid"

    #: Both write the MLP branch after Gemma-2's post-MLP norm (circuit-tracer's `hook_mlp_out`).
    output_site = "mlp_out_post_norm"

    def to_dict(self) -> dict:
        return asdict(self)


def gemma_config(n_layers: int, tokenizer, shape: str = "gemma-2-2b") -> object:
    from transformers import Gemma2Config

    widths = SHAPES[shape]
    heads, kv_heads, head_dim = widths["heads"]
    return Gemma2Config(
        vocab_size=len(tokenizer),
        hidden_size=widths["d_model"],
        intermediate_size=widths["d_mlp"],
        num_hidden_layers=n_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        query_pre_attn_scalar=head_dim,
        max_position_embeddings=8192,
        sliding_window=4096,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_model(root: Path, n_layers: int, seed: int = 0, shape: str = "gemma-2-2b"):
    """The model (bfloat16, random) saved under root/model-{shape}-L{n_layers}; reused."""
    from transformers import Gemma2ForCausalLM

    model_dir = root / f"model-{shape}-L{n_layers}"
    tokenizer = build_tokenizer(SHAPES[shape]["vocab"] - 4)
    if (model_dir / "config.json").exists():
        return Gemma2ForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16), tokenizer
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # never a float32 copy of 2.6B parameters
    try:
        model = Gemma2ForCausalLM(gemma_config(n_layers, tokenizer, shape)).eval()
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(model_dir)
    save_portable_tokenizer(tokenizer, model_dir)
    return model, tokenizer


class SafetensorsWriter:
    """A bfloat16 safetensors file written row block by row block at any position; rows never
    written are holes (zeros that take no disk), so a file can be far larger than what it
    stores (`live` below)."""

    def __init__(self, file: Path, shapes: dict[str, tuple[int, ...]]) -> None:
        self.offsets: dict[str, tuple[int, tuple[int, ...]]] = {}
        header: dict[str, dict] = {}
        at = 0
        for name, shape in shapes.items():
            nbytes = 2 * _numel(shape)
            header[name] = {
                "dtype": "BF16",
                "shape": list(shape),
                "data_offsets": [at, at + nbytes],
            }
            self.offsets[name] = (at, shape)
            at += nbytes
        text = json.dumps(header)
        text += " " * (-len(text) % 8)
        self.start = 8 + len(text)
        self.f = open(file, "wb")  # noqa: SIM115 (closed in close())
        self.f.write(struct.pack("<Q", len(text)) + text.encode())
        self.f.truncate(self.start + at)

    def write(self, name: str, first_row: int, block: torch.Tensor) -> None:
        """Rows `first_row .. first_row + len(block)` of tensor `name`."""
        at, shape = self.offsets[name]
        row_bytes = 2 * _numel(shape[1:])
        self.f.seek(self.start + at + first_row * row_bytes)
        self.f.write(block.to(torch.bfloat16).contiguous().view(torch.uint8).numpy().tobytes())

    def write_rows(self, name: str, rows: torch.Tensor, block: torch.Tensor) -> None:
        """Rows `rows` (ascending) of tensor `name`, one run of consecutive rows at a time."""
        breaks = (torch.nonzero(rows.diff() != 1).flatten() + 1).tolist()
        for lo, hi in zip([0, *breaks], [*breaks, len(rows)], strict=True):
            self.write(name, int(rows[lo]), block[lo:hi])

    def close(self) -> None:
        self.f.close()


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


@torch.no_grad()
def build_world(spec: GemmaSpec, root: Path, prompts_per_length: int = 1) -> World:
    """Model and transcoders under `root` (reused when the spec matches)."""
    root = Path(root)
    tc_dir = root / f"{spec.shape}-{spec.kind}-L{spec.n_layers}-F{spec.n_features}-{spec.live}"
    lengths = [n for n in spec.prompt_lengths for _ in range(prompts_per_length)]
    prompts = random_prompts(spec, lengths, seed=spec.seed + 2)  # type: ignore[arg-type]
    stamp = tc_dir / "spec.json"
    doc = json.loads(json.dumps({**spec.to_dict(), "prompts": prompts}))  # tuples as lists
    model_dir = root / f"model-{spec.shape}-L{spec.n_layers}"
    if stamp.exists() and json.loads(stamp.read_text()) == doc:
        return World(spec, model_dir, tc_dir, prompts)  # type: ignore[arg-type]
    model, tokenizer = build_model(root, spec.n_layers, spec.seed, spec.shape)
    tc_dir.mkdir(parents=True, exist_ok=True)
    calibration = random_prompts(spec, [64] * 4, seed=spec.seed + 3)  # type: ignore[arg-type]
    xs, ys = site_activations(model, tokenizer, calibration, spec.input_site, spec.output_site)
    bench_xs, _ = site_activations(model, tokenizer, prompts, spec.input_site, spec.output_site)
    del model
    x = torch.cat([t[:, 1:] for t in xs], dim=1)  # [L, N, d]
    y = torch.cat([t[:, 1:] for t in ys], dim=1)
    L, F, d = spec.n_layers, spec.n_features, spec.d_model
    n_live = spec.live or F
    gen = torch.Generator().manual_seed(spec.seed + 1)
    y_norm = (y - y.mean(dim=1, keepdim=True)).norm(dim=-1).mean(dim=1)  # [L]
    for layer in range(L):
        live = torch.randperm(F, generator=gen)[:n_live].sort().values
        config = TranscoderConfig(kind="plt", n_layers=1, d_model=d, n_features=n_live)
        one = Transcoder(config)  # the live features of this layer
        w_enc = torch.randn(n_live, d, generator=gen)
        one.W_enc.copy_((w_enc / w_enc.norm(dim=-1, keepdim=True)).bfloat16().float()[None])
        pre = one.pre_activations(x[layer : layer + 1])  # [1, N, live]
        quantile = torch.quantile(pre[0], 1.0 - spec.l0 / n_live, dim=0).clamp(min=1e-3)
        one.threshold.copy_(quantile.bfloat16().float()[None])
        nudge_thresholds(one, [t[layer : layer + 1] for t in bench_xs])
        threshold = torch.full((F,), 1e6)
        threshold[live] = one.threshold[0]
        act_size = float(one.threshold.mean())
        bank = torch.randn(n_live, d, generator=gen)
        bank = (bank / bank.norm(dim=-1, keepdim=True)).bfloat16()
        targets = list(range(layer, L)) if spec.kind == "clt" else [layer]
        writers = [(t + 1) if spec.kind == "clt" else 1 for t in targets]
        scales = [
            float(y_norm[t]) / (act_size * (spec.l0 * w) ** 0.5)
            for t, w in zip(targets, writers, strict=True)
        ]
        small = {
            "b_enc": torch.zeros(F),
            "b_dec": y[layer].mean(dim=0),
            "threshold": threshold,
        }
        if spec.kind == "plt":
            names = {
                "W_enc": "W_enc",
                "W_dec": "W_dec",
                "threshold": "activation_function.threshold",
            }
            enc_file = dec_file = tc_dir / f"layer_{layer}.safetensors"
            dec_shape: tuple[int, ...] = (F, d)
        else:
            names = {k: f"{k}_{layer}" for k in ("W_enc", "W_dec", "threshold")}
            enc_file, dec_file = (tc_dir / f"{k}_{layer}.safetensors" for k in ("W_enc", "W_dec"))
            dec_shape = (F, L - layer, d)
        small_names = {k: names.get(k, k if spec.kind == "plt" else f"{k}_{layer}") for k in small}
        enc_shapes = {
            names["W_enc"]: (F, d),
            **{small_names[k]: (len(v),) for k, v in small.items()},
        }
        if spec.kind == "plt":
            enc_shapes[names["W_dec"]] = dec_shape
        enc = SafetensorsWriter(enc_file, enc_shapes)
        enc.write_rows(names["W_enc"], live, one.W_enc[0])
        for k, v in small.items():
            enc.write(small_names[k], 0, v)
        dec = (
            enc if spec.kind == "plt" else SafetensorsWriter(dec_file, {names["W_dec"]: dec_shape})
        )
        for start in range(0, n_live, 1024):
            ids = torch.arange(start, min(start + 1024, n_live))
            block = torch.stack([bank[(ids - j) % n_live] * s for j, s in enumerate(scales)], 1)
            dec.write_rows(names["W_dec"], live[ids], block if spec.kind == "clt" else block[:, 0])
        enc.close()
        dec.close()
    hooks = {
        "plt": ("ln2.hook_normalized", "hook_mlp_out", "transcoder_set"),
        "clt": ("hook_resid_mid", "hook_mlp_out", "cross_layer_transcoder"),
    }[spec.kind]
    config = {
        "model_kind": hooks[2],
        "feature_input_hook": hooks[0],
        "feature_output_hook": hooks[1],
        "scan": f"gemma-shape-{spec.kind}",
    }
    (tc_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    stamp.write_text(json.dumps(doc))
    return World(spec, model_dir, tc_dir, prompts)  # type: ignore[arg-type]
