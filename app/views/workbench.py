"""Query workbench: run a library or saved query (or your own read-only Cypher) with a form, see
the table (and paths drawn), save queries, make supernodes from results."""

import json

import pandas as pd
import streamlit as st

from app.data import supernodes, workbench
from app.ui.guard import run_page
from app.ui.param_form import param_inputs
from app.ui.path_view import show_path
from app.ui.records import displayable
from queries.library import LibraryQuery

RESULT_KEY = "wb_result"
DEFAULT_ROW_CAP = 1000


def _pick_named() -> tuple[str, LibraryQuery | None]:
    lib = workbench.library()
    stored = workbench.saved_queries()
    options = list(lib) + [f"saved:{name}" for name in stored]
    current = st.query_params.get("query", options[0])
    st.session_state.setdefault("wb_query", current if current in options else options[0])
    name = st.selectbox(
        "Query",
        options,
        key="wb_query",
        format_func=lambda o: (
            f"{o.removeprefix('saved:')} (saved)"
            if o.startswith("saved:")
            else f"{o}: {lib[o].title}"
        ),
        on_change=lambda: st.query_params.update({"query": st.session_state["wb_query"]}),
    )
    if name.startswith("saved:"):
        return name.removeprefix("saved:"), None
    return name, lib[name]


def _named_query() -> None:
    name, query = _pick_named()
    if query is not None:
        st.caption(query.description)
    else:
        stored = workbench.saved_queries()[name]
        st.caption(stored.description or "Saved query.")
        st.code(stored.cypher, language="cypher")
    with st.form("wb_form"):
        params = (
            param_inputs(query, "wb_p")
            if query is not None
            else _json_params("wb_saved_params", workbench.saved_queries()[name].params)
        )
        row_cap = st.number_input("Row cap", 1, 100_000, DEFAULT_ROW_CAP, key="wb_cap")
        if st.form_submit_button("Run", icon=":material/play_arrow:", type="primary"):
            bound = query.bind(params) if query is not None else params
            result = workbench.run_named(name, bound, int(row_cap))
            st.session_state[RESULT_KEY] = {
                "name": name,
                "saved": query is None,
                "params": bound,
                "result": result,
            }
    if query is not None:
        with st.expander("Cypher"):
            st.code(query.cypher, language="cypher")


def _json_params(key: str, defaults: dict) -> dict:
    raw = st.text_area("Parameters (JSON object)", json.dumps(defaults), key=key, height=80)
    value = json.loads(raw or "{}")
    if not isinstance(value, dict):
        raise ValueError("parameters must be a JSON object")
    return value


def _custom_query() -> None:
    examples = {e.title: e.cypher for e in workbench.examples()}
    picked = st.selectbox("Start from an example (docs/schema.md)", ["—", *examples])
    if picked in examples and st.session_state.get("wb_example") != picked:
        st.session_state["wb_example"] = picked
        st.session_state["wb_cypher"] = examples[picked]
    with st.form("wb_custom"):
        cypher = st.text_area(
            "Cypher (read-only)",
            key="wb_cypher",
            height=160,
            placeholder="MATCH (f:Feature) RETURN f.uid AS feature_uid LIMIT 10",
        )
        params = _json_params("wb_custom_params", {})
        row_cap = st.number_input("Row cap", 1, 100_000, DEFAULT_ROW_CAP, key="wb_custom_cap")
        c1, c2, c3 = st.columns([1, 2, 3], vertical_alignment="bottom")
        run_it = c1.form_submit_button("Run", icon=":material/play_arrow:", type="primary")
        save_name = c2.text_input("Save as", key="wb_save_name", placeholder="name")
        description = c3.text_input("Description", key="wb_save_desc")
        save_it = st.form_submit_button("Save query", icon=":material/save:")
    if run_it:
        result = workbench.run_text(cypher, params, int(row_cap))
        st.session_state[RESULT_KEY] = {
            "name": None,
            "saved": False,
            "params": params,
            "cypher": cypher,
            "result": result,
        }
    if save_it:
        workbench.save(save_name.strip(), cypher, description, params)
        st.success(f"Saved query `{save_name.strip()}`; pick it under Library or saved query.")


def _results() -> None:
    run = st.session_state.get(RESULT_KEY)
    if not run:
        return
    result = run["result"]
    frame: pd.DataFrame = result.frame
    st.subheader("Results")
    (st.warning if result.capped else st.caption)(result.note)
    st.dataframe(displayable(frame), hide_index=True, key="wb_table")
    if {"graph_uid", "node_ids"} <= set(frame.columns) and len(frame):
        _path_drawing(frame)
    uids = _feature_uids(frame)
    if uids:
        _supernode_from_result(run, uids)


def _path_drawing(frame: pd.DataFrame) -> None:
    st.markdown("**Path**")
    labels = {
        i: f"#{i}  {row.get('prompt', row['graph_uid'])}  ({row.get('strength', 0):.3g})"
        for i, row in frame.iterrows()
    }
    row = st.selectbox(
        "Draw the path of row", list(labels), format_func=labels.get, key="wb_path_row"
    )
    show_path(frame.loc[row, "graph_uid"], list(frame.loc[row, "node_ids"]), key="wb_path_chart")


def _feature_uids(frame: pd.DataFrame) -> list[str]:
    """Feature uids in a result: a `feature_uid` column, or `features` lists (path queries)."""
    if "feature_uid" in frame.columns:
        return sorted(set(frame["feature_uid"].dropna()))
    if "features" in frame.columns:
        return sorted({u for lst in frame["features"] for u in (lst or []) if u})
    return []


def _supernode_from_result(run: dict, uids: list[str]) -> None:
    title = f"Make a supernode from these {len(uids)} features"
    with st.expander(title), st.form("wb_supernode"):
        name = st.text_input("Supernode name", key="wb_sn_name")
        description = st.text_input("Description", key="wb_sn_desc")
        defined = run["saved"] and run["name"] is not None
        st.caption(
            f"Defined by saved query `{run['name']}`: refresh re-runs it."
            if defined
            else "Stored as an explicit list of these features."
        )
        if st.form_submit_button("Create supernode", icon=":material/hub:"):
            if defined:
                node = supernodes.create_from_query(
                    name.strip(), run["name"], run["params"], description
                )
            else:
                node = supernodes.create_from_features(name.strip(), uids, description)
            st.success(f"Supernode `{node.name}` created with {len(node.members)} members.")


def render() -> None:
    st.title("Query workbench")
    mode = st.segmented_control(
        "Source",
        ["Library or saved query", "Write Cypher"],
        default="Library or saved query",
        key="wb_mode",
    )
    if mode == "Write Cypher":
        _custom_query()
    else:
        _named_query()
    _results()


run_page(render)
