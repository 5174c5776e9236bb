"""The graph view's state lives in the URL (st.query_params), so any view can be shared by link.

Callbacks change it through `update`, which runs before the page script re-renders."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app.graphview.state import GraphViewState


def read() -> GraphViewState:
    return GraphViewState.from_params(st.query_params.to_dict())


def write(state: GraphViewState) -> None:
    params = state.to_params()
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


def update(change: Callable[[GraphViewState], None]) -> None:
    state = read()
    change(state)
    write(state)
