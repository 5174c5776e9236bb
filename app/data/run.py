"""Run a library query for the dashboard: no row cap for code-owned reads, results cached briefly.

Caching keys on the query name and its parameters; `clear()` after the dashboard writes
(labels, supernodes, saved queries) so the next read sees the change."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from app.data.connection import get_handle
from queries.runner import QueryResult, run_query


def cache_ttl_s() -> int:
    return int(os.environ.get("CIRCUITMAP_APP_CACHE_TTL_S", "60"))


@st.cache_data(ttl=cache_ttl_s(), show_spinner=False, max_entries=256)
def frame(name: str, **params: object) -> pd.DataFrame:
    """All rows of library query `name` as a DataFrame."""
    return run_query(get_handle(), name, params, row_cap=0).frame


def result(name: str, params: dict[str, object], row_cap: int | None = None) -> QueryResult:
    """Uncached run with the user-facing row cap (the workbench)."""
    return run_query(get_handle(), name, params, row_cap=row_cap)


def clear() -> None:
    frame.clear()
