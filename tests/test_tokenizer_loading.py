"""The tokenizer a checkpoint declares is the one circuitmap loads: a saved word-level
tokenizer.json tokenizes as saved, whatever tokenizer class transformers maps the model type to."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer
from typer.testing import CliRunner

from circuitmap.models import load_model, tokenize
from circuitmap.pipeline import GraphBuilder
from circuitmap.transcoders import save_transcoder
from cli.main import app
from tests.tiny_models import FAMILIES, save_tiny_checkpoint, tiny_transcoder

PROMPTS = ["the capital of texas is", "the opposite of hot is", "dallas is in a city"]


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_word_level_tokenizer_is_used_as_saved(family, tmp_path):
    model_dir = save_tiny_checkpoint(family, tmp_path / family)
    saved = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    _, tokenizer = load_model(str(model_dir))
    for prompt in PROMPTS:
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
        assert ids == saved.encode(prompt, add_special_tokens=False).ids, (family, prompt)
        assert tokenize(tokenizer, prompt).tolist() == [tokenizer.bos_token_id, *ids]


def test_trace_of_a_qwen2_checkpoint_with_a_word_level_tokenizer(tmp_path):
    """Was "error: empty prompt": Qwen2Tokenizer rebuilt a BPE with no merges from the vocab."""
    model_dir, tc_dir = save_tiny_checkpoint("qwen2", tmp_path / "model"), tmp_path / "clt"
    save_transcoder(tiny_transcoder("clt"), tc_dir)
    args = ["trace", "the opposite of hot is", "--model", str(model_dir)]
    result = CliRunner().invoke(app, [*args, "--transcoders", str(tc_dir)])
    assert result.exit_code == 0, result.output
    builder = GraphBuilder.from_paths(str(model_dir), str(tc_dir))
    record = builder.build("dallas is in texas")
    assert record.prompt_tokens[1:] == ["dallas", "is", "in", "texas"]
