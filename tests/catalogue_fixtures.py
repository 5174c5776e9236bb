"""A tiny model with planted transcoder features, for catalogue tests.

Feature 0 of layer 0 reads "dallas" (its encoder is a least-squares direction that separates that
token's layer-0 inputs from every other token's, its threshold halfway) and writes the "austin"
logit direction minus the "texas" one, split over two output layers (a CLT feature). Feature 1 of
layer 0 reads a direction every token has some of, so it fires with a wide range of activations
(for the quantile bins). The rest is random (tests.tiny_models).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from circuitmap.catalogue.builder import ModelInputs
from circuitmap.models import ModelAdapter
from circuitmap.transcoders import Transcoder
from tests.tiny_models import WORDS, tiny_model, tiny_tokenizer, tiny_transcoder

PLANTED_LAYER = 0
CITY, BROAD = 0, 1


@dataclass
class Planted:
    model: torch.nn.Module
    tokenizer: object
    transcoder: Transcoder
    texts: list[str]
    logit_direction: torch.Tensor  # what feature CITY writes, summed over its output layers


def corpus(n: int, seed: int = 0) -> list[str]:
    """`n` word sequences, about a third of them with "dallas" somewhere."""
    rng = random.Random(seed)
    words = [w for w in WORDS if w != "dallas"]
    texts = []
    for i in range(n):
        seq = [rng.choice(words) for _ in range(rng.randint(3, 9))]
        if i % 3 == 0:
            seq.insert(rng.randrange(len(seq) + 1), "dallas")
        texts.append(" ".join(seq))
    return list(dict.fromkeys(texts))


@torch.no_grad()
def planted(n_texts: int = 90) -> Planted:
    model, tokenizer = tiny_model("llama", seed=0), tiny_tokenizer()
    tc = tiny_transcoder("clt", seed=0)
    texts = corpus(n_texts)
    source = ModelInputs(model, tokenizer, tc, max_seq_len=32)
    x, lengths = source.inputs(texts)
    x0 = x[:, PLANTED_LAYER]
    ids = [t for text in texts for t in source.harvester.token_ids(text)[1:]]
    is_city = torch.tensor(ids) == tokenizer.convert_tokens_to_ids("dallas")
    target = is_city.float() * 2 - 1  # a least-squares linear classifier of the token
    design = torch.cat([x0, torch.ones(len(x0), 1)], 1)
    direction = torch.linalg.lstsq(design, target[:, None]).solution[:-1, 0]
    direction /= direction.norm()
    proj = x0 @ direction
    low, high = float(proj[~is_city].max()), float(proj[is_city].min())
    assert low < high, "the planted token is not separable in this tiny model"
    tc.W_enc[PLANTED_LAYER, CITY] = direction
    tc.b_enc[PLANTED_LAYER, CITY] = 0.0
    tc.threshold[PLANTED_LAYER, CITY] = (low + high) / 2
    broad = x0.mean(0) / x0.mean(0).norm()
    tc.W_enc[PLANTED_LAYER, BROAD] = broad
    tc.b_enc[PLANTED_LAYER, BROAD] = -float((x0 @ broad).quantile(0.2))
    tc.threshold[PLANTED_LAYER, BROAD] = 0.0
    adapter = ModelAdapter(model)
    w_u = adapter.W_U.float()
    gain = adapter.norm_spec(adapter.final_norm).weight.float()
    austin, texas = tokenizer.convert_tokens_to_ids(["austin", "texas"])
    write = (w_u[:, austin] - w_u[:, texas]) / gain
    tc.W_dec[PLANTED_LAYER][CITY] = 0.0
    tc.W_dec[PLANTED_LAYER][CITY, 0] = 0.25 * write
    tc.W_dec[PLANTED_LAYER][CITY, 2] = 0.75 * write
    return Planted(model, tokenizer, tc, texts, write)
