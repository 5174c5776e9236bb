"""Benchmark: the feature catalogue at gemma-2-2b's shapes (random weights), and its memory.

A per-layer transcoder of 16,384 JumpReLU features per layer on d_model 2,304 (GemmaScope's 16k
transcoders on gemma-2-2b), random weights, thresholds set so about 100 features per token fire.
Its inputs are random residuals (`SyntheticInputs`), not gemma-2-2b's forward pass: the model's
2.6B parameters do not fit this benchmark's memory on a small CPU box, and the model's forward is
the same for any use of the model, so the figures are the catalogue's own cost (wall and CPU
time: the CPU rate is the robust one on a shared machine). Each corpus size
runs in its own process so each peak RSS (VmHWM) is that run's alone:

- pass 1 (stream the corpus, per-feature top-k, quantile samples, counts) tokens/s;
- pass 2 (re-read the chosen texts' per-token activations) seconds;
- peak RSS at 1x and 10x the tokens: the running state is fixed by the number of features;
- logit effects (decoder through gemma-2-2b's 256,000-token unembedding) for one chunk of
  features, extrapolated to the whole transcoder.

    .venv/bin/python -m bench.catalogue [--layers 2] [--tokens 2048] [--device cpu] [--threads 2]

`--layers 26` is the full depth (a GPU run); on the 2-core CPU fewer layers of the same width are
timed and the per-layer rate scales linearly with the depth.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence

import torch

from bench.peer.run_circuit_tracer import peak_rss_bytes
from circuitmap.catalogue.builder import (
    CatalogueSettings,
    choose_slots,
    logit_effects,
    read_contexts,
    scan_corpus,
)
from circuitmap.transcoders import Transcoder, TranscoderConfig

D_MODEL, N_FEATURES, VOCAB = 2304, 16384, 256_000
TOKENS_PER_TEXT = 64
THRESHOLD = 2.5  # pre-activations are ~N(0, 1): about 0.6% of features (100) fire per token


class SyntheticInputs:
    """Random residuals `[n_tokens, L, d]`, fixed per text (seeded by its hash)."""

    def __init__(self, n_layers: int, device: str) -> None:
        self.n_layers, self.device = n_layers, device

    def inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        for text in texts:
            seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
            gen = torch.Generator().manual_seed(seed)
            parts.append(torch.randn(TOKENS_PER_TEXT, self.n_layers, D_MODEL, generator=gen))
        return torch.cat(parts).to(self.device), torch.full((len(texts),), TOKENS_PER_TEXT)

    def tokens(self, text: str) -> list[str]:
        return [f"t{i}" for i in range(TOKENS_PER_TEXT)]


def gemma_shaped_transcoder(n_layers: int, device: str) -> Transcoder:
    config = TranscoderConfig(
        kind="plt", n_layers=n_layers, d_model=D_MODEL, n_features=N_FEATURES,
        input_site="mlp_in_unweighted", output_site="mlp_out_post_norm", name="bench-gemma-16k",
    )  # fmt: skip
    tc = Transcoder(config)
    tc.init_weights(torch.Generator().manual_seed(0))
    with torch.no_grad():
        tc.threshold.fill_(THRESHOLD)
    return tc.to(device).eval()


@torch.no_grad()
def one_run(n_layers: int, n_texts: int, device: str) -> dict[str, float]:
    """Pass 1 and pass 2 over `n_texts` texts of TOKENS_PER_TEXT tokens; figures and peak RSS."""
    tc = gemma_shaped_transcoder(n_layers, device)
    texts = [f"text {i}" for i in range(n_texts)]
    settings = CatalogueSettings(batch_texts=16, max_seq_len=TOKENS_PER_TEXT)
    source = SyntheticInputs(n_layers, device)
    start, cpu = time.perf_counter(), time.process_time()
    stats = scan_corpus(source, tc, texts, settings)
    pass1, pass1_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    slots = choose_slots(stats, settings, tc.n_features)
    read_contexts(source, tc, texts, slots, settings)
    pass2 = time.perf_counter() - start
    density = float(stats.layers[0].active_tokens.sum()) / stats.n_tokens / N_FEATURES
    return {
        "tokens": stats.n_tokens,
        "pass1_s": pass1,
        "pass1_tokens_per_s": stats.n_tokens / pass1,
        "pass1_tokens_per_cpu_s": stats.n_tokens / pass1_cpu,
        "pass2_s": pass2,
        "context_slots": len(slots.text),
        "l0": density * N_FEATURES,
        "peak_rss_gib": peak_rss_bytes() / 2**30,
    }


@torch.no_grad()
def logit_chunk_seconds(chunk: int, device: str) -> float:
    """Seconds for one chunk of `chunk` features through a 256,000 x 2,304 unembedding."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(
        vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=1, num_key_value_heads=1, head_dim=32,
    )  # fmt: skip
    with torch.device("meta"):
        model = Gemma2ForCausalLM(config)
    model = model.to_empty(device=device)
    torch.nn.init.normal_(model.model.embed_tokens.weight, std=0.02)
    model.model.norm.weight.data.normal_(0.0, 0.3)
    small = Transcoder(TranscoderConfig("plt", 1, D_MODEL, chunk, name="chunk"))
    small.init_weights(torch.Generator().manual_seed(1))
    small = small.to(device)
    start = time.perf_counter()
    logit_effects(model, small, 10, [0, 1, 2, 3], chunk=chunk)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=2048, help="the 1x corpus (10x also runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--logit-chunk", type=int, default=512)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one is not None:
        print(json.dumps(one_run(args.layers, args.one, args.device)))
        return
    print(
        f"catalogue of a {args.layers}-layer x {N_FEATURES:,}-feature transcoder, d_model "
        f"{D_MODEL:,} (gemma-2-2b shapes), {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    n_texts = max(1, args.tokens // TOKENS_PER_TEXT)
    for scale in (1, 10):
        cmd = [sys.executable, "-m", "bench.catalogue", "--layers", str(args.layers),
               "--device", args.device, "--one", str(n_texts * scale)]  # fmt: skip
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        per_layer = run["pass1_tokens_per_s"] * args.layers
        print(
            f"  {scale:>2}x corpus: {run['tokens']:>7,} tokens, L0 {run['l0']:.0f}; pass 1 "
            f"{run['pass1_tokens_per_s']:,.0f} tokens/s wall, "
            f"{run['pass1_tokens_per_cpu_s']:,.0f} per CPU-second ({per_layer:,.0f} token-layers/s "
            f"wall: {per_layer / 26:,.0f} tokens/s at 26 layers); pass 2 {run['pass2_s']:.1f} s "
            f"for {run['context_slots']:,} contexts; peak RSS {run['peak_rss_gib']:.2f} GiB"
        )
    seconds = logit_chunk_seconds(args.logit_chunk, args.device)
    per_layer = seconds * N_FEATURES / args.logit_chunk
    print(
        f"  logit effects: {args.logit_chunk} features through the {VOCAB:,}-token unembedding "
        f"in {seconds:.1f} s: {per_layer / 60:.1f} min per 16k layer, "
        f"{per_layer * 26 / 3600:.1f} h for 26 layers on this device"
    )


if __name__ == "__main__":
    main()
