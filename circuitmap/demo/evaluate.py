"""Greedy exact-match accuracy per (kind, split): how we tell composing from recalling."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from circuitmap.demo.corpus import Example, load_corpus
from circuitmap.demo.model import load_model


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")


@torch.no_grad()
def greedy_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    n_tokens: Sequence[int],
    batch_size: int = 1024,
) -> list[str]:
    """Greedy continuation of each prompt by its own number of tokens (prompts of one token length
    are batched together, so no padding or position ids are involved)."""
    ids = tokenizer(list(prompts))["input_ids"]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(ids):
        by_length[len(row)].append(i)
    out: list[str] = [""] * len(prompts)
    for members in by_length.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            steps = max(n_tokens[i] for i in chunk)
            x = torch.tensor([ids[i] for i in chunk])
            new = []
            for _ in range(steps):
                next_ids = model(input_ids=x).logits[:, -1].argmax(-1, keepdim=True)
                new.append(next_ids)
                x = torch.cat([x, next_ids], dim=1)
            generated = torch.cat(new, dim=1).tolist()
            for i, row in zip(chunk, generated, strict=True):
                out[i] = tokenizer.decode(row[: n_tokens[i]])
    return out


def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example]
) -> dict[tuple[str, str], Accuracy]:
    """Accuracy keyed by (kind, split), e.g. ("two_hop", "heldout")."""
    n_tokens = [len(tokenizer(e.answer, add_special_tokens=False)["input_ids"]) for e in examples]
    was_training = model.training
    model.eval()
    answers = greedy_answers(model, tokenizer, [e.prompt for e in examples], n_tokens)
    model.train(was_training)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e, got in zip(examples, answers, strict=True):
        c = counts[(e.kind, e.split)]
        c[0] += got == e.answer
        c[1] += 1
    return {key: Accuracy(*counts[key]) for key in sorted(counts)}


def format_accuracies(acc: dict[tuple[str, str], Accuracy]) -> str:
    return ", ".join(f"{k}/{s} {a.value:.1%} ({a.correct}/{a.total})" for (k, s), a in acc.items())


def evaluate_saved(directory: Path) -> dict[tuple[str, str], Accuracy]:
    """Accuracy of a saved demo model on its own corpus (for tests on the cached demo model)."""
    model, tokenizer = load_model(directory)
    return evaluate(model, tokenizer, load_corpus(directory).examples)
