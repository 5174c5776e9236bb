"""`circuitmap trace` on a saved tiny model and transcoder."""

import json

from typer.testing import CliRunner

from circuitmap.transcoders import save_transcoder
from cli.main import app
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder


def test_trace_prints_summary_and_writes_json(tmp_path):
    model_dir, tc_dir, out = tmp_path / "model", tmp_path / "clt", tmp_path / "graph.json"
    tiny_model("llama").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    save_transcoder(tiny_transcoder("clt"), tc_dir)
    args = ["trace", "the capital of the state containing dallas is", "--model", str(model_dir)]
    result = CliRunner().invoke(app, [*args, "--transcoders", str(tc_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Top logits" in result.output and "replacement score" in result.output
    assert "-> pruned" in result.output
    doc = json.loads(out.read_text())
    assert doc["metadata"]["prompt"].startswith("the capital")

    empty = CliRunner().invoke(
        app, ["trace", " ", "--model", str(model_dir), "--transcoders", str(tc_dir)]
    )
    assert empty.exit_code == 1 and "empty prompt" in empty.output


def test_trace_without_paths_explains_itself(monkeypatch):
    monkeypatch.setattr("cli.trace.demo_paths", lambda: (None, None))  # as if no demo is built
    result = CliRunner().invoke(app, ["trace", "dallas"])
    assert result.exit_code == 1 and "--model" in result.output


def test_trace_device_and_precision_options(tmp_path):
    """`--dtype bfloat16 --transcoder-loading lazy` traces; `--device cuda` traces on a GPU and
    is a one-line error without one."""
    import torch

    model_dir, tc_dir = tmp_path / "model", tmp_path / "clt"
    tiny_model("llama").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    save_transcoder(tiny_transcoder("clt"), tc_dir)
    args = ["trace", "the capital of the state containing dallas is", "--model", str(model_dir)]
    args += ["--transcoders", str(tc_dir)]
    low = CliRunner().invoke(app, [*args, "--dtype", "bfloat16", "--transcoder-loading", "lazy"])
    assert low.exit_code == 0, low.output
    assert "replacement score" in low.output
    gpu = CliRunner().invoke(app, [*args, "--device", "cuda"])
    if torch.cuda.is_available():
        assert gpu.exit_code == 0, gpu.output
    else:
        assert gpu.exit_code == 1 and "no CUDA device" in gpu.output
    tight = CliRunner().invoke(app, [*args, "--memory-limit-gb", "0.000001"])
    assert tight.exit_code == 1 and "max_feature_nodes" in tight.output
