"""User text shown on the page as typed: names and prompts are data, never Markdown or LaTeX."""

from __future__ import annotations

import re

# Characters Streamlit's Markdown gives a meaning to (CommonMark punctuation, `$` for LaTeX, `:`
# for emoji and colour directives, `~` for strikethrough).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:])")


def literal(text: object) -> str:
    """`text` escaped so that `st.markdown` shows it character for character."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def distinct_prompts(prompts: list[str], keep: int = 2) -> dict[str, str]:
    """A short label per prompt that leads with what tells it apart: the words it shares with
    the prompts sorted next to it (e.g. "the capital of the state containing") are folded into
    an ellipsis, keeping the last `keep` shared words for context. Pickers cut long labels at
    the right, so the differing word must come early."""
    ordered = sorted(set(prompts))
    words = {p: p.split() for p in ordered}
    labels = {}
    for i, prompt in enumerate(ordered):
        shared = 0
        for j in (i - 1, i + 1):
            if 0 <= j < len(ordered):
                shared = max(shared, _common_prefix(words[prompt], words[ordered[j]]))
        mine = words[prompt]
        shared = min(shared, len(mine) - 1)  # always keep the last word
        cut = shared - keep
        labels[prompt] = "… " + " ".join(mine[cut:]) if cut > 0 else prompt
    return labels


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
