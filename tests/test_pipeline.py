"""GraphBuilder: prompt -> pruned GraphRecord, and its one-line errors."""

import numpy as np
import pytest

from circuitmap.pipeline import GraphBuilder, GraphSettings
from circuitmap.transcoders import TranscoderFormatError
from tests.tiny_models import tiny_model, tiny_tokenizer, tiny_transcoder

PROMPT = "the capital of the state containing dallas is"


def builder(**settings) -> GraphBuilder:
    return GraphBuilder(
        tiny_model("llama"),
        tiny_transcoder("clt"),
        GraphSettings(**settings),
        tokenizer=tiny_tokenizer(),
        model_name="tiny-llama",
    )


def test_build_gives_a_valid_pruned_record():
    result = builder(batch_size=32).build_full(PROMPT)
    record = result.record
    record.validate()
    kinds = [n.kind for n in record.nodes]
    n_pos = result.graph.n_pos
    assert kinds.count("token") == n_pos and record.prompt_tokens[0] == "<bos>"
    assert 1 <= kinds.count("logit") <= 10
    assert kinds.count("feature") < result.graph.n_features
    assert record.n_edges < record.metadata["n_edges_unpruned"]
    assert record.model == "tiny-llama" and record.transcoder == "tiny-clt"
    assert set(record.scores) == {"replacement", "completeness"}
    assert record.settings["node_threshold"] == 0.8
    logits = [n for n in record.nodes if n.kind == "logit"]
    assert all(n.position == n_pos - 1 and n.layer == record.n_layers for n in logits)
    assert sum(n.probability for n in logits) <= 1.0
    features = [n for n in record.nodes if n.kind == "feature"]
    assert all(n.activation > 0 and 0 < n.influence <= 1 for n in features)
    assert np.isfinite(record.edge_weight).all() and (record.edge_weight != 0).all()
    # Edges point from sources to later targets: never into a token.
    token_index = {i for i, n in enumerate(record.nodes) if n.kind == "token"}
    assert not token_index & set(record.edge_target.tolist())


def test_feature_cap_limits_feature_nodes():
    record = builder(max_feature_nodes=5).build(PROMPT)
    assert sum(n.kind == "feature" for n in record.nodes) <= 5


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "empty prompt"), ("the " * 40, "longer than the model's context of 32")],
)
def test_bad_prompts_give_one_line_errors(prompt, message):
    with pytest.raises(ValueError, match=message) as info:
        builder().build(prompt)
    assert "\n" not in str(info.value)


def test_transcoder_of_another_model_is_rejected():
    tc = tiny_transcoder("clt")
    tc.config.n_layers = 5
    with pytest.raises(TranscoderFormatError, match="5 layers"):
        GraphBuilder(tiny_model("llama"), tc, tokenizer=tiny_tokenizer())


def test_settings_are_checked():
    with pytest.raises(ValueError, match="node_threshold"):
        GraphSettings(node_threshold=2.0)
    with pytest.raises(ValueError, match="dtype"):
        GraphSettings(dtype="float8")


def test_ingest_compute_refuses_a_graph_that_would_not_fit(tmp_path):
    """The ingest side: the computation's future carries the memory error (the worker stores
    any compute error as the prompt's failed graph and goes on), and `max_feature_nodes` and
    the machine settings reach the builder through the recipe."""
    from circuitmap.memory import MemoryBudgetError
    from circuitmap.transcoders import save_transcoder
    from ingest.compute import ComputeRecipe, InlineExecutor

    tiny_model("llama").save_pretrained(tmp_path / "model")
    tiny_tokenizer().save_pretrained(tmp_path / "model")
    save_transcoder(tiny_transcoder("clt"), tmp_path / "clt")
    settings = {"max_feature_nodes": 7500, "memory_limit_gb": 1e-6, "transcoder_loading": "lazy"}
    recipe = ComputeRecipe("pipeline", str(tmp_path / "model"), str(tmp_path / "clt"), settings)
    executor = InlineExecutor(recipe)
    assert executor.spec.settings["max_feature_nodes"] == 7500
    assert executor.computer.compute.__self__.rm.transcoder.lazy
    error = executor.submit(PROMPT).exception()
    assert isinstance(error, MemoryBudgetError) and "max_feature_nodes (now 7500)" in str(error)
