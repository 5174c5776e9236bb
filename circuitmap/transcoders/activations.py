"""Harvest transcoder training data: every layer's input-site and output-site activations.

Forward hooks on the real modules (located by `circuitmap.models.ModelAdapter`) record, per
token, `x [L, d]` at the transcoder's input site and `y [L, d]` at its output site. A special
first token (BOS) and padding are dropped: BOS carries huge attention-sink activations, and
attribution leaves its features out anyway. `TokenStream` turns a corpus into an endless,
seeded, token-shuffled supply of such pairs held in a bounded buffer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from circuitmap.models import Hooks, ModelAdapter, tokenize


class ActivationHarvester:
    """Runs the model on prompts and returns `(x, y)`, each `[n_tokens, L, d]` float32.

    Prompts are tokenized as attribution tokenizes them (`circuitmap.models.tokenize`), so
    training sees the same contexts."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        input_site: str,
        output_site: str,
        max_seq_len: int = 128,
        batch_size: int = 32,
    ) -> None:
        self.adapter = ModelAdapter(model)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.input_site = input_site
        self.output_site = output_site
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self.device = self.adapter.device

    @property
    def n_layers(self) -> int:
        return self.adapter.n_layers

    @property
    def d_model(self) -> int:
        return self.adapter.d_model

    def token_ids(self, text: str) -> list[int]:
        return tokenize(self.tokenizer, text)[: self.max_seq_len].tolist()

    def n_tokens(self, text: str) -> int:
        """Tokens of a prompt that become training data (all but a special first token)."""
        ids = self.token_ids(text)
        return len(ids) - (ids[0] in self.tokenizer.all_special_ids)

    def harvest(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for start in range(0, len(texts), self.batch_size):
            x, y = self._batch(texts[start : start + self.batch_size])
            xs.append(x)
            ys.append(y)
        if not xs:
            raise ValueError("no prompts to harvest activations from")
        return torch.cat(xs), torch.cat(ys)

    @torch.inference_mode()
    def _batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [self.token_ids(t) for t in texts]
        n, width = len(seqs), max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((n, width), pad, dtype=torch.long)
        attention = torch.zeros(n, width, dtype=torch.bool)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            attention[i, : len(s)] = True
        keep = attention.clone()
        special = torch.tensor(self.tokenizer.all_special_ids or [-1])
        keep[:, 0] &= ~torch.isin(ids[:, 0], special)
        ins: list[torch.Tensor | None] = [None] * self.n_layers
        outs: list[torch.Tensor | None] = [None] * self.n_layers
        with Hooks() as hooks:
            for layer in range(self.n_layers):
                self._hook_layer(hooks, layer, ins, outs)
            self.model(input_ids=ids.to(self.device), attention_mask=attention.to(self.device))
        mask = keep.to(self.device)
        x = torch.stack([t[mask] for t in ins], dim=1).float().cpu()
        y = torch.stack([t[mask] for t in outs], dim=1).float().cpu()
        return x, y

    def _hook_layer(self, hooks: Hooks, layer: int, ins: list, outs: list) -> None:
        adapter, site = self.adapter, self.input_site
        norm = adapter.input_site_norm(layer, site) if site == "mlp_in_unweighted" else None

        def read_input(x: torch.Tensor) -> None:
            ins[layer] = x if norm is None else norm.linear(x.float(), norm.scale(x))

        def read_output(_x: torch.Tensor, output) -> None:
            outs[layer] = output[0] if isinstance(output, tuple) else output

        hooks.pre(adapter.input_site_module(layer, site), read_input)
        hooks.post(adapter.output_site_module(layer, self.output_site), read_output)


def read_corpus(source: str | Path | Sequence[str]) -> list[str]:
    """Prompts from a text file (one per line) or a list; blank lines dropped."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {path} not found")
        lines = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = list(source)
    prompts = [line.strip() for line in lines if line.strip()]
    if not prompts:
        raise ValueError(f"corpus {source if isinstance(source, str | Path) else ''} is empty")
    return prompts


class TokenStream:
    """Endless shuffled minibatches of `(x, y)` tokens from a corpus, in bounded memory.

    The buffer holds at most `buffer_tokens` tokens (memory: buffer_tokens * L * d * 8 bytes).
    Batches are drawn from a token-level permutation; once half the buffer has been served, the
    served tokens are replaced by freshly harvested ones and the buffer is reshuffled. Prompts are
    visited in a seeded random order, epoch after epoch. A corpus whose tokens fit in the buffer
    is harvested once and then only reshuffled."""

    def __init__(
        self,
        harvester: ActivationHarvester,
        prompts: Sequence[str],
        buffer_tokens: int,
        seed: int,
        prompts_per_harvest: int = 256,
    ) -> None:
        self.harvester = harvester
        self.prompts = list(prompts)
        self.prompts_per_harvest = prompts_per_harvest
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.cursor = 0
        self.static = self._corpus_tokens(buffer_tokens) <= buffer_tokens
        if self.static:
            self.x, self.y = harvester.harvest(self.prompts)
        else:
            self.x, self.y = self._fill(buffer_tokens)
        if len(self.x) == 0:
            raise ValueError("the corpus gives no tokens besides BOS")
        self._shuffle()

    def _corpus_tokens(self, limit: int) -> int:
        """Tokens the corpus yields (without BOS), counting no further than past `limit`."""
        total = 0
        for p in self.prompts:
            total += self.harvester.n_tokens(p)
            if total > limit:
                break
        return total

    def _next_prompts(self) -> list[str]:
        if self.cursor >= len(self.order):
            self.order = list(range(len(self.prompts)))
            self.rng.shuffle(self.order)
            self.cursor = 0
        chunk = self.order[self.cursor : self.cursor + self.prompts_per_harvest]
        self.cursor += len(chunk)
        return [self.prompts[i] for i in chunk]

    def _fill(self, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys, total = [], [], 0
        while total < n_tokens:
            x, y = self.harvester.harvest(self._next_prompts())
            xs.append(x)
            ys.append(y)
            total += len(x)
        return torch.cat(xs)[:n_tokens], torch.cat(ys)[:n_tokens]

    def _shuffle(self) -> None:
        perm = torch.randperm(len(self.x), generator=self.gen)
        self.x, self.y = self.x[perm], self.y[perm]
        self.served = 0

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A `[n, L, d]` minibatch of inputs and targets (fewer if the corpus is tiny)."""
        usable = len(self.x) if self.static else len(self.x) // 2
        if self.served + n > max(usable, n):
            self._refresh()
        x = self.x[self.served : self.served + n]
        y = self.y[self.served : self.served + n]
        self.served += len(x)
        return x, y

    def _refresh(self) -> None:
        if not self.static:
            fresh_x, fresh_y = self._fill(self.served)
            self.x = torch.cat([self.x[self.served :], fresh_x])
            self.y = torch.cat([self.y[self.served :], fresh_y])
        self._shuffle()
