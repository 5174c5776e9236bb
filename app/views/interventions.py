"""Interventions: pick features of a graph, set or scale them, and see the top logits change."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.data import interventions
from app.data.graphs import load_graph
from app.graphview.state import GraphViewState
from app.ui import urlstate
from app.ui.graph_header import sidebar_graph_picker
from app.ui.guard import EMPTY_DB_HINT, run_page
from app.ui.intervention_results import by_change

MODES = ["scale", "set"]


def _edits_table(features: pd.DataFrame, chosen: list[str]) -> list[interventions.FeatureEdit]:
    rows = features.set_index("node_id").loc[chosen].reset_index()
    table = pd.DataFrame(
        {
            "node": rows["caption"],
            "activation": rows["activation"],
            "mode": "scale",
            "value": -1.0,
        }
    )
    edited = st.data_editor(
        table,
        hide_index=True,
        key="iv_table",
        disabled=["node", "activation"],
        column_config={
            "mode": st.column_config.SelectboxColumn("mode", options=MODES, required=True),
            "value": st.column_config.NumberColumn(
                "value",
                help="scale: multiply the activation (-1 inhibits, 0 ablates); "
                "set: the new activation",
                required=True,
            ),
        },
    )
    return [
        interventions.FeatureEdit(
            int(r.layer), int(r.position), int(r.feature_index), str(m), float(v)
        )
        for r, m, v in zip(rows.itertuples(), edited["mode"], edited["value"], strict=True)
    ]


def _chart(result: pd.DataFrame) -> go.Figure:
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


def render() -> None:
    st.title("Interventions")
    state = urlstate.read()
    if not sidebar_graph_picker(state):
        st.info(EMPTY_DB_HINT, icon=":material/database:")
        return
    if not state.graph:
        st.info(
            "Choose a graph in the sidebar, or pin features in the graph view and follow "
            "*Intervene on pinned features*."
        )
        return
    bundle = load_graph(state.graph)
    st.markdown(f"### “{bundle.info['prompt']}”")
    model_default, tc_default = interventions.default_paths(bundle.info)
    c1, c2 = st.columns(2)
    model_path = c1.text_input("Model directory", model_default, key="iv_model")
    tc_path = c2.text_input("Transcoder directory", tc_default, key="iv_tc")
    absent = interventions.missing(model_path, tc_path)
    if absent:
        st.info(
            "Interventions run the model itself, so they need its weights on this machine: "
            f"not found: {', '.join(absent)}. Give the directories above (or set "
            "CIRCUITMAP_MODEL and CIRCUITMAP_TRANSCODERS).",
            icon=":material/info:",
        )
        return
    features = bundle.nodes[bundle.nodes["kind"] == "feature"]
    captions = dict(zip(features["node_id"], features["caption"], strict=True))
    preset = [p for p in state.pinned if p in captions]
    chosen = st.multiselect(
        "Features to intervene on",
        list(captions),
        default=preset,
        format_func=captions.get,
        key="iv_features",
        on_change=lambda: urlstate.update(_pins_from_picker),
    )
    if not chosen:
        st.caption("Pick at least one feature.")
        return
    edits = _edits_table(features, chosen)
    o1, o2, o3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    freeze = o1.checkbox("Freeze attention patterns", value=True, key="iv_freeze")
    constrained = o2.checkbox(
        "Constrained (frozen linear setting)",
        value=False,
        key="iv_constrained",
        help="MLP outputs held at their clean values; the edited features "
        "write directly to every layer, as the graph's edges assume.",
    )
    if o3.button("Run intervention", type="primary", key="iv_run", icon=":material/play_arrow:"):
        builder = interventions.load(model_path, tc_path)
        st.session_state["iv_result"] = (
            state.graph,
            interventions.compare(
                builder,
                str(bundle.info["prompt"]),
                edits,
                freeze_attention=freeze,
                constrained=constrained,
            ),
        )
    graph, result = st.session_state.get("iv_result", (None, None))
    if graph == state.graph:
        left, right = st.columns([2, 3])
        result = by_change(result)
        left.dataframe(
            result,
            hide_index=True,
            key="iv_out",
            column_config={
                c: st.column_config.NumberColumn(c, format="%.4f")
                for c in ("original", "intervened", "change")
            },
        )
        right.plotly_chart(_chart(result), key="iv_chart")


def _pins_from_picker(state: GraphViewState) -> None:
    state.pinned = list(st.session_state.get("iv_features") or [])


run_page(render)
