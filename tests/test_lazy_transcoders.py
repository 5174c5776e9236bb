"""Lazily loaded (memory-mapped) transcoders, dtype on load, bf16 graphs, the memory estimate and
the CUDA device (skipped without one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from circuitmap.attribution import attribute
from circuitmap.memory import GIB, MemoryBudgetError, estimate, fit_compute_batch
from circuitmap.models import tokenize
from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.pruning import prune
from circuitmap.replacement import ReplacementModel
from circuitmap.transcoders import LazyTranscoder, Transcoder, load_transcoder, save_transcoder
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder

PROMPT = "the capital of the state containing dallas is"
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

#: The documented bound for bfloat16 graphs (docs/precision.md): edges among the features that
#: both graphs share, and from tokens, differ by at most this fraction of the largest edge.
BF16_EDGE_BOUND = 0.03
#: ... and the pruned graphs' kept node sets overlap at least this much (Jaccard).
BF16_NODE_AGREEMENT = 0.8


def graph_of(tc: Transcoder, family: str = "llama"):
    rm = ReplacementModel(tiny_model(family), tc)
    return attribute(rm, tokenize(tiny_tokenizer(), PROMPT), batch_size=16)


def assert_same_graph(a, b) -> None:
    assert torch.equal(a.active_features, b.active_features)
    torch.testing.assert_close(a.activation_values, b.activation_values, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a.rows, b.rows, atol=1e-5, rtol=1e-4)


def write_npz_set(tc: Transcoder, root: Path) -> None:
    """`tc` (a PLT) as GemmaScope npz files listed in a circuit-tracer config."""
    root.mkdir()
    for layer in range(tc.n_layers):
        np.savez(
            root / f"params_{layer}.npz",
            W_enc=tc.W_enc[layer].T.detach().numpy(),
            W_dec=tc.W_dec[layer][:, 0].detach().numpy(),
            b_enc=tc.b_enc[layer].detach().numpy(),
            b_dec=tc.b_dec[layer].detach().numpy(),
            threshold=tc.threshold[layer].detach().numpy(),
        )
    config = {
        "model_kind": "transcoder_set",
        "feature_input_hook": "hook_resid_mid",
        "feature_output_hook": "mlp.hook_out",
        "transcoders": [f"params_{i}.npz" for i in range(tc.n_layers)],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize(
    ("kind", "fmt", "skip"),
    [
        ("clt", "circuitmap", False),
        ("plt", "circuitmap", True),
        ("clt", "circuit-tracer", False),
        ("plt", "circuit-tracer", True),
        ("plt", "npz", False),
    ],
)
def test_lazy_graph_equals_eager(tmp_path, monkeypatch, kind, fmt, skip):
    monkeypatch.setenv("CIRCUITMAP_HOME", str(tmp_path / "home"))
    tc = tiny_transcoder(kind, skip=skip)
    if fmt == "npz":
        write_npz_set(tc, tmp_path / "tc")
    else:
        save_transcoder(tc, tmp_path / "tc", format=fmt)
    eager = load_transcoder(tmp_path / "tc", lazy=False)
    lazy = load_transcoder(tmp_path / "tc", lazy=True)
    assert isinstance(lazy, LazyTranscoder) and not isinstance(eager, LazyTranscoder)
    lazy.encoder_chunk = 7  # several chunks, one ragged
    assert_same_graph(graph_of(eager), graph_of(lazy))
    if fmt == "npz":  # converted once into a mappable cache file, reused afterwards
        cached = sorted((tmp_path / "home" / "cache" / "npz").glob("*.safetensors"))
        assert len(cached) == tc.n_layers
        stamps = [f.stat().st_mtime_ns for f in cached]
        load_transcoder(tmp_path / "tc", lazy=True)
        assert [f.stat().st_mtime_ns for f in cached] == stamps


def test_lazy_transcoder_is_read_only(tmp_path):
    save_transcoder(tiny_transcoder("clt"), tmp_path / "tc")
    lazy = load_transcoder(tmp_path / "tc", lazy=True)
    with pytest.raises(TypeError, match="read-only"):
        lazy.init_weights()


def sparse_clt(d_model: int, n_features: int, n_live: int, seed: int = 0) -> Transcoder:
    """A random 3-layer CLT of which only `n_live` features per layer can fire."""
    config = tiny_transcoder("clt").config
    config.d_model, config.n_features = d_model, n_features
    tc = Transcoder(config)
    gen = torch.Generator().manual_seed(seed)
    tc.init_weights(gen)
    with torch.no_grad():
        tc.threshold.fill_(1e6)
        live = torch.randint(0, n_features, (config.n_layers, n_live), generator=gen)
        tc.threshold[torch.arange(config.n_layers)[:, None], live] = 0.0
    return tc


def wide_llama(d_model: int):
    """A 3-layer Llama of the tiny tokenizer's vocabulary with a wider residual stream."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer()), hidden_size=d_model, intermediate_size=2 * d_model,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=64,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def test_only_active_decoder_rows_are_read(tmp_path, monkeypatch):
    """Every byte read from the decoder files belongs to an active feature's row."""
    from circuitmap.transcoders import ondisk

    tc = sparse_clt(32, 16384, n_live=8)
    save_transcoder(tc, tmp_path / "clt", format="circuit-tracer")
    read: dict[str, int] = {}
    real_read = ondisk._OpenFile.read_into

    def counting(self, buffer, offset):
        read[self.path.name] = read.get(self.path.name, 0) + buffer.nbytes
        return real_read(self, buffer, offset)

    monkeypatch.setattr(ondisk._OpenFile, "read_into", counting)
    graph = graph_of(load_transcoder(tmp_path / "clt", lazy=True))
    assert graph.n_features > 0
    torch.testing.assert_close(graph.rows, graph_of(tc).rows, atol=1e-5, rtol=1e-4)
    for layer in range(tc.n_layers):
        name = f"W_dec_{layer}.safetensors"
        row = tc.n_out(layer) * tc.d_model * 4
        active = int((graph.active_features[:, 0] == layer).sum())
        assert read.get(name, 0) <= 3 * active * row, name  # reconstruction, then packing
        assert (tmp_path / "clt" / name).stat().st_size > 100 * read.get(name, 0)
    assert read["W_enc_0.safetensors"] >= tc.n_features * tc.d_model * 4  # read in chunks


def test_decoder_files_several_times_larger_than_memory_growth(tmp_path):
    """Peak resident memory while loading lazily and computing a graph grows by a fraction of
    the decoder files' size (d_model 256, 32k features per layer: 150 MiB of decoders)."""
    d, F = 256, 32768
    tc = sparse_clt(d, F, n_live=16)
    save_transcoder(tc, tmp_path / "clt", format="circuit-tracer")
    decoder_bytes = sum(f.stat().st_size for f in (tmp_path / "clt").glob("W_dec_*"))
    model = wide_llama(d)
    del tc
    ids = tokenize(tiny_tokenizer(), PROMPT)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _status_bytes("VmRSS")
    lazy = load_transcoder(tmp_path / "clt", lazy=True)
    graph = attribute(ReplacementModel(model, lazy), ids, batch_size=16)
    growth = _status_bytes("VmHWM") - before
    assert graph.n_features > 0
    assert decoder_bytes > 4 * growth, (decoder_bytes, growth)


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_loading_reads_straight_into_the_dtype(tmp_path, dtype):
    tc = tiny_transcoder("clt", skip=False)
    save_transcoder(tc, tmp_path / "tc", format="circuit-tracer")
    for lazy in (False, True):
        low = load_transcoder(tmp_path / "tc", dtype=dtype, lazy=lazy)
        assert low.dtype == dtype and low.b_enc.dtype == dtype
        rows = low.decoder_vectors(1, [0, 5])
        assert rows.dtype == dtype
        torch.testing.assert_close(rows, tc.W_dec[1][[0, 5]].to(dtype))


def test_bfloat16_graphs_within_documented_bound():
    """Edge error among shared features and from tokens, and kept-node agreement after pruning."""
    model, tc = tiny_model("llama"), tiny_transcoder("clt")
    ids = tokenize(tiny_tokenizer(), PROMPT)
    ref = attribute(ReplacementModel(model, tc), ids)
    low = attribute(ReplacementModel(model.to(torch.bfloat16), tc.to(torch.bfloat16)), ids)
    keys = [{tuple(f): i for i, f in enumerate(g.active_features.tolist())} for g in (ref, low)]
    common = sorted(set(keys[0]) & set(keys[1]))
    assert len(common) > 0.9 * len(keys[0])

    def block(g, key):
        rows = torch.tensor([key[f] for f in common])
        cols = torch.cat([rows, torch.arange(g.token_offset, g.logit_offset)])
        return g.rows[rows][:, cols]

    a, b = block(ref, keys[0]), block(low, keys[1])
    assert (a - b).abs().max() <= BF16_EDGE_BOUND * a.abs().max()

    def kept(g):
        mask = prune(g).node_mask
        feats = g.active_features[g.selected_features].tolist()
        out = {("f", *feats[i]) for i in mask[: g.n_features].nonzero().flatten().tolist()}
        return out | {
            ("e", i) for i in mask[g.error_offset : g.token_offset].nonzero().flatten().tolist()
        }

    a_nodes, b_nodes = kept(ref), kept(low)
    assert len(a_nodes & b_nodes) >= BF16_NODE_AGREEMENT * len(a_nodes | b_nodes)


def builder(**settings) -> GraphBuilder:
    return GraphBuilder(
        tiny_model("llama"), tiny_transcoder("clt"), GraphSettings(**settings),
        tokenizer=tiny_tokenizer(), model_name="tiny-llama",
    )  # fmt: skip


def test_memory_estimate_refuses_with_what_to_change():
    with pytest.raises(MemoryBudgetError) as info:
        builder(memory_limit_gb=1e-5, max_feature_nodes=5000).build(PROMPT)
    message = str(info.value)
    assert "MiB" in message and "available" in message
    for knob in ("max_feature_nodes (now 5000)", "batch_size (now 256)", "bfloat16"):
        assert knob in message
    # A limit that fits computes the graph as usual.
    assert builder(memory_limit_gb=4).build(PROMPT).nodes


def test_machine_settings_stay_out_of_recorded_settings_at_defaults():
    assert "transcoder_loading" not in GraphSettings().to_dict()
    assert "memory_limit_gb" not in GraphSettings().to_dict()
    assert GraphSettings(memory_limit_gb=8).to_dict()["memory_limit_gb"] == 8
    with pytest.raises(ValueError, match="transcoder_loading"):
        GraphSettings(transcoder_loading="sometimes")


def test_estimate_at_gemma_2_2b_shape_for_2048_tokens():
    """The figures docs/precision.md quotes: gemma-2-2b with a 16k PLT (eager) in bfloat16,
    2,048 tokens with 50,000 active features, 7,500 feature nodes, batch 16 (shapes only); and
    the compute batch that a budget leaves."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(
        vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
        num_attention_heads=8, num_key_value_heads=4, head_dim=256,
    )  # fmt: skip
    with torch.device("meta"):
        model = Gemma2ForCausalLM(config).to(torch.bfloat16)
        tc_config = tiny_transcoder("plt").config
        tc_config.n_layers, tc_config.d_model, tc_config.n_features = 26, 2304, 16384
        tc = Transcoder(tc_config, dtype=torch.bfloat16)
    rm = ReplacementModel(model, tc)
    kwargs = {"batch_size": 16, "max_feature_nodes": 7500, "max_n_logits": 10}
    need = estimate(rm, 2048, n_active_features=50_000, **kwargs)
    assert 8 * GIB < need.total < 12 * GIB, need.describe()
    n_nodes = 7500 + 27 * 2048 + 10
    assert need.parts["graph rows"] == 0  # capped: the graph's rows are formed after selection
    assert need.parts["pruning"] < n_nodes**2 * 4 / 3  # rows, not a dense N x N matrix
    record = need.parts["attention patterns"] + need.parts["sites and errors"]
    assert record < 3 * GIB  # lean: no logits over the prompt, no norms
    bigger = estimate(rm, 2048, n_active_features=50_000, **{**kwargs, "batch_size": 64})
    assert bigger.total > need.total

    def need_with(compute_batch_size: int):
        return estimate(
            rm, 2048, n_active_features=50_000, compute_batch_size=compute_batch_size,
            **{**kwargs, "batch_size": 64},
        )  # fmt: skip

    fitted = fit_compute_batch(need_with, 64, need.total, max_feature_nodes=7500, dtype="bfloat16")
    assert fitted.compute_batch_size < 64 and fitted.batch_size == 64
    assert fitted.total <= need.total
    with pytest.raises(MemoryBudgetError, match="max_feature_nodes"):
        fit_compute_batch(need_with, 64, 4 * GIB, max_feature_nodes=7500, dtype="bfloat16")


#: Builds one graph of a 300-token prompt in a fresh process, after a warm-up graph, and prints
#: the peak RSS growth during it (VmHWM, reset through /proc/self/clear_refs) and the estimate.
_MEASURE_PEAK = """
import json, random, sys
from pathlib import Path
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.transcoders import Transcoder
from tests.tiny_models import WORDS, tiny_tokenizer, tiny_transcoder

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

torch.manual_seed(0)
torch.set_num_threads(1)
tok = tiny_tokenizer()
config = LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=512,
    num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    max_position_embeddings=512, pad_token_id=0, bos_token_id=2, eos_token_id=3)
model = LlamaForCausalLM(config).eval()
tc_config = tiny_transcoder(sys.argv[1]).config
tc_config.n_layers, tc_config.d_model, tc_config.n_features = 4, 256, 2048
tc = Transcoder(tc_config)
tc.init_weights(torch.Generator().manual_seed(0))
settings = GraphSettings(batch_size=32, max_feature_nodes=int(sys.argv[2]), memory_limit_gb=8)
builder = GraphBuilder(model, tc, settings, tokenizer=tok)
rng = random.Random(0)
prompt = " ".join(rng.choice(WORDS) for _ in range(300))
with torch.no_grad():  # a given share of the features fire at each position
    pre = tc.pre_activations(builder.rm.run(builder.tokenize(prompt)).site_in)
    tc.threshold.copy_(torch.quantile(pre, 1 - float(sys.argv[3]), dim=1))
builder.build(" ".join(rng.choice(WORDS) for _ in range(20)))  # warm-up
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")
result = builder.build_full(prompt)
peak = status("VmHWM")
need = builder.check_memory(result.graph.n_pos, int(result.graph.active_features.shape[0]))
print(json.dumps({"growth": peak - before, "estimate": need.total, "parts": need.describe(),
    "active": int(result.graph.active_features.shape[0]), "tokens": result.graph.n_pos}))
"""


@pytest.mark.parametrize(
    ("kind", "max_feature_nodes", "share"), [("clt", 200, 0.02), ("plt", 0, 0.002)]
)
def test_estimate_bounds_the_measured_peak(kind, max_feature_nodes, share):
    """On a ~300-token prompt with thousands of active features, the peak RSS growth while one
    graph is built (a fresh process, after a warm-up graph) stays below the estimate, which is
    not wildly above it either."""
    import json
    import subprocess
    import sys

    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak RSS")
    repo = Path(__file__).resolve().parent.parent
    cap = str(max_feature_nodes or 10**9)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_PEAK, kind, cap, str(share)],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["active"] > 4000, figures
    assert figures["growth"] < figures["estimate"], figures
    assert figures["estimate"] < 4 * figures["growth"], figures


@CUDA
def test_lazy_transcoder_on_cuda_matches_cpu(tmp_path):
    save_transcoder(tiny_transcoder("clt"), tmp_path / "tc", format="circuit-tracer")
    cpu = graph_of(load_transcoder(tmp_path / "tc", lazy=True))
    tc = load_transcoder(tmp_path / "tc", device="cuda", lazy=True)
    ids = tokenize(tiny_tokenizer(), PROMPT)
    gpu = attribute(ReplacementModel(tiny_model("llama").cuda(), tc), ids, batch_size=16)
    torch.testing.assert_close(gpu.rows, cpu.rows, atol=1e-4, rtol=1e-4)


@CUDA
def test_builder_on_cuda_in_bfloat16():
    record = builder(device="cuda", dtype="bfloat16").build(PROMPT)
    record.validate()
    assert record.nodes


def test_cuda_asked_for_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        builder(device="cuda")
