"""Top activating contexts as text with each token shaded by the feature's activation on it."""

from __future__ import annotations

import html

import streamlit as st

from app.data.features import Context

STYLE = (
    "<style>.cm-ctx{font-family:ui-monospace,monospace;font-size:13px;line-height:1.9;"
    "margin:2px 0;padding:2px 6px;border-bottom:1px solid #f1f5f9}"
    ".cm-tok{padding:1px 2px;border-radius:3px;margin-right:2px}"
    ".cm-max{color:#64748b;font-size:11px;margin-right:8px}</style>"
)


def context_html(ctx: Context, scale: float) -> str:
    """One context line; opacity of the highlight = activation / scale."""
    spans = []
    for token, act in zip(ctx.tokens, ctx.activations, strict=True):
        alpha = 0.0 if scale <= 0 else max(0.0, min(1.0, act / scale))
        title = f"{act:.3g}"
        spans.append(
            f'<span class="cm-tok" title="{title}" '
            f'style="background: rgba(249,115,22,{alpha:.2f})">{html.escape(token)}</span>'
        )
    peak = max(ctx.activations, default=0.0)
    return f'<div class="cm-ctx"><span class="cm-max">{peak:.2f}</span>{"".join(spans)}</div>'


def show_contexts(contexts: list[Context]) -> None:
    if not contexts:
        st.caption("No top activating contexts stored for this feature.")
        return
    scale = max((max(c.activations, default=0.0) for c in contexts), default=0.0)
    st.html(STYLE + "".join(context_html(c, scale) for c in contexts))
