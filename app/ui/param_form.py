"""Form widgets for a library query's documented parameters (queries/library.py headers)."""

from __future__ import annotations

import json

import streamlit as st

from app.data.graphs import corpus_stats, tags
from app.ui.graph_header import graph_choices
from queries.library import LibraryQuery, QueryParam

GRAPH_PARAMS = ("graph", "graph_a", "graph_b")


def picker_options(name: str) -> dict[str, str] | None:
    """Values (with their labels) a string parameter can take in this database, for the
    parameters named after a corpus dimension; None for free-text parameters. A picker, not a
    text box: a mistyped tag ("two-hop" for "two_hop") silently matched nothing."""
    if name == "tag":
        return {t: t for t in tags()}
    if name in ("model", "transcoder"):
        column = corpus_stats().get(f"{name}_uid")
        values = [] if column is None else sorted(column.dropna().unique())
        return {v: v for v in values}
    if name in GRAPH_PARAMS:
        return graph_choices()
    return None


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
    options = picker_options(p.name) if p.type == "str" else None
    if options is not None:
        return st.selectbox(
            label,
            list(options),
            index=0 if p.required and options else None,
            format_func=options.get,
            key=key,
            help=help_text,
            placeholder=placeholder if options else "none in the database",
        )
    raw = st.text_input(label, key=key, help=help_text, placeholder=placeholder)
    if not raw.strip():
        return None
    return p.coerce(raw.strip())
