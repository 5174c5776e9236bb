"""Small Plotly charts for corpus views (score and size distributions)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

SCORE_COLORS = {"replacement_score": "#6366f1", "completeness_score": "#10b981"}


def score_histogram(graphs: pd.DataFrame) -> go.Figure:
    """Overlaid histograms of the two scores over graphs, on [0, 1]."""
    fig = go.Figure()
    for col, color in SCORE_COLORS.items():
        values = pd.to_numeric(graphs[col], errors="coerce").dropna()
        fig.add_histogram(
            x=values,
            name=col.replace("_score", ""),
            marker_color=color,
            opacity=0.65,
            xbins={"start": 0.0, "end": 1.0, "size": 0.025},
        )
    fig.update_layout(
        barmode="overlay",
        height=300,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        xaxis_title="score",
        yaxis_title="graphs",
        legend={"orientation": "h", "y": 1.12},
    )
    fig.update_xaxes(range=[0, 1])
    return fig


def size_histogram(graphs: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    fig.add_histogram(x=pd.to_numeric(graphs["n_nodes"], errors="coerce"), marker_color="#7fb2dd")
    fig.update_layout(
        height=300,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        xaxis_title="nodes per pruned graph",
        yaxis_title="graphs",
    )
    return fig


def logit_effects_chart(
    top: list[str], top_effects: list[float], bottom: list[str], bottom_effects: list[float]
) -> go.Figure:
    """A feature's strongest direct logit effects: promoted tokens green, suppressed purple."""
    tokens = list(bottom)[::-1] + list(top)[::-1]
    effects = list(bottom_effects)[::-1] + list(top_effects)[::-1]
    colors = ["#7b3294" if e < 0 else "#1b7837" for e in effects]
    fig = go.Figure(go.Bar(x=effects, y=tokens, orientation="h", marker_color=colors))
    fig.update_layout(
        height=max(220, 22 * len(tokens) + 60),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        xaxis_title="logit effect",
        yaxis={"type": "category"},
    )
    return fig


def activation_histogram(activations: pd.Series, title: str) -> go.Figure:
    """Distribution of a feature's activation over its appearances."""
    fig = go.Figure()
    fig.add_histogram(
        x=pd.to_numeric(activations, errors="coerce").dropna(), marker_color="#7fb2dd", nbinsx=30
    )
    fig.update_layout(
        height=200,
        margin={"l": 40, "r": 10, "t": 30, "b": 35},
        title={"text": f"Activation over its appearances ({title})", "font": {"size": 13}},
        xaxis_title="activation",
        yaxis_title="instances",
    )
    return fig
