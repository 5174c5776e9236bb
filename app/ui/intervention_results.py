"""How intervention results are shown: ordered by change, charted, listed as a history, and
compared across runs."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ingest.intervention_runs import InterventionRunRecord

PROBABILITY_COLUMNS = ("original", "intervened", "change")


def by_change(result: pd.DataFrame) -> pd.DataFrame:
    """Largest change in probability first (up or down): what the intervention did, not what
    was already likely, on top."""
    order = result["change"].abs().sort_values(ascending=False, kind="stable").index
    return result.loc[order].reset_index(drop=True)


def chart(result: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    fig.add_bar(x=result["token"], y=result["original"], name="original", marker_color="#94a3b8")
    fig.add_bar(
        x=result["token"], y=result["intervened"], name="intervened", marker_color="#7c3aed"
    )
    fig.update_layout(
        barmode="group",
        height=320,
        margin={"l": 40, "r": 10, "t": 30, "b": 40},
        yaxis_title="probability",
        legend={"orientation": "h", "y": 1.15},
    )
    return fig


def show_result(result: pd.DataFrame) -> None:
    """The top tokens, largest change first, beside a bar chart of before and after."""
    left, right = st.columns([2, 3])
    result = by_change(result)
    left.dataframe(
        result,
        hide_index=True,
        key="iv_out",
        column_config={
            c: st.column_config.NumberColumn(c, format="%.4f") for c in PROBABILITY_COLUMNS
        },
    )
    right.plotly_chart(chart(result), key="iv_chart")


def run_label(run: InterventionRunRecord) -> str:
    """A run named in pickers: when, and what was intervened."""
    when = run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "?"
    return f"{when} · {run.summary}"


def history_frame(runs: list[InterventionRunRecord]) -> pd.DataFrame:
    """One row per run: when, what, the top prediction before and after, the answer's
    probability before and after."""
    return pd.DataFrame(
        {
            "when": [r.created_at for r in runs],
            "intervention": [r.summary for r in runs],
            "top before": [(r.top_before or [""])[0] for r in runs],
            "top after": [(r.top_after or [""])[0] for r in runs],
            "answer": [r.answer for r in runs],
            "p(answer) before": [r.p_answer_before for r in runs],
            "p(answer) after": [r.p_answer_after for r in runs],
        }
    )


def comparison(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Token by run: the original probability (the same prompt for every run) and each run's
    intervened probability, tokens missing from a run's top list left empty."""
    merged: pd.DataFrame | None = None
    for name, table in tables.items():
        part = table[["token", "original", "intervened"]].rename(columns={"intervened": name})
        if merged is None:
            merged = part
        else:
            merged = merged.merge(part.drop(columns="original"), on="token", how="outer")
            merged["original"] = merged["original"].fillna(
                merged["token"].map(dict(zip(part["token"], part["original"], strict=True)))
            )
    if merged is None:
        return pd.DataFrame(columns=["token", "original"])
    return merged.sort_values("original", ascending=False, ignore_index=True)
