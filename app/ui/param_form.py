"""Form widgets for a library query's documented parameters (queries/library.py headers)."""

from __future__ import annotations

import json

import streamlit as st

from queries.library import LibraryQuery, QueryParam


def param_inputs(query: LibraryQuery, key: str) -> dict[str, object]:
    """One widget per parameter, typed by its declaration; returns raw values to `query.bind`.

    Optional parameters left blank are not sent (their defaults apply)."""
    values: dict[str, object] = {}
    columns = st.columns(3)
    for i, p in enumerate(query.params):
        with columns[i % 3]:
            value = _widget(p, f"{key}_{query.name}_{p.name}")
        if value is not None:
            values[p.name] = value
    return values


def _widget(p: QueryParam, key: str) -> object:
    label = f"{p.name}{' *' if p.required else ''}"
    help_text = f"{p.type} · {p.doc}"
    if p.type == "bool":
        return st.checkbox(label, value=bool(p.default), key=key, help=help_text)
    if p.type == "int" and p.default is not None:
        return int(st.number_input(label, value=int(p.default), step=1, key=key, help=help_text))
    if p.type == "float" and p.default is not None:
        return float(
            st.number_input(label, value=float(p.default), format="%.6g", key=key, help=help_text)
        )
    placeholder = "required" if p.required else f"default: {json.dumps(p.default)}"
    raw = st.text_input(label, key=key, help=help_text, placeholder=placeholder)
    if not raw.strip():
        return None
    return p.coerce(raw.strip())
