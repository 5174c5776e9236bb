"""Interventions: edit features of a graph, scale a saved supernode, inject features from a donor
prompt (the Texas -> California swap), and see the top logits change; every run is kept in a
history (Neo4j) that can be re-opened and compared."""

import pandas as pd
import streamlit as st

from app.data import intervention_history as history
from app.data import interventions
from app.data import supernodes as supernode_data
from app.data.features import search as search_features
from app.data.graphs import load_graph
from app.graphview.state import GraphViewState
from app.ui import urlstate
from app.ui.graph_header import sidebar_graph_picker
from app.ui.guard import EMPTY_DB_HINT, run_page
from app.ui.intervention_results import comparison, history_frame, run_label, show_result
from app.ui.text import literal
from circuitmap.interventions import FeatureKey

MODES = ["scale", "set"]
INJECT_KINDS = ["a supernode", "features"]
NOTHING_CHOSEN = "Pick at least one feature, a supernode to scale, or features to inject."


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


def _graph_features(
    features: pd.DataFrame, state: GraphViewState
) -> list[interventions.FeatureEdit]:
    captions = dict(zip(features["node_id"], features["caption"], strict=True))
    preset = [p for p in state.pinned if p in captions]
    chosen = st.multiselect(
        "Features of this graph",
        list(captions),
        default=preset,
        format_func=captions.get,
        key="iv_features",
        on_change=lambda: urlstate.update(_pins_from_picker),
    )
    return _edits_table(features, chosen) if chosen else []


def _members(supernode: str | None) -> tuple[FeatureKey, ...] | None:
    """The saved supernode's members as (layer, index); None (said on the page) when there is
    none to use."""
    if supernode is None:
        return None
    try:
        return interventions.supernode_keys(supernode)
    except (LookupError, ValueError) as error:
        st.error(str(error))
        return None


def _supernode_scale(names: list[str], features: pd.DataFrame) -> interventions.GroupScale | None:
    """A saved supernode and the factor for all its active instances in this prompt."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    name = c1.selectbox("Scale a supernode", names, index=None, key="iv_sn", placeholder="none")
    factor = c2.number_input(
        "by", value=-1.0, step=0.5, key="iv_sn_scale",
        help="Every active instance of its members in this prompt: -1 inhibits, 0 removes, "
        "2 doubles.",
    )  # fmt: skip
    keys = _members(name)
    if keys is None:
        return None
    in_graph = set(zip(features["layer"], features["feature_index"], strict=True)) & set(keys)
    st.caption(f"{len(keys)} members; {len(in_graph)} of them have nodes in this graph.")
    return interventions.GroupScale(name, keys, float(factor))


def _injection(names: list[str], graph_uid: str) -> interventions.Injection | None:
    """Features to inject and the donor prompts to take their activations from."""
    kind = st.radio("Inject", INJECT_KINDS, horizontal=True, key="iv_inj_kind", index=None)
    if kind is None:
        return None
    if kind == INJECT_KINDS[0]:
        name = st.selectbox("Supernode to inject", names, index=None, key="iv_inj_sn")
        keys = _members(name)
        if keys is None:
            return None
        donors = interventions.donor_graphs(supernode=name, exclude=graph_uid)
    else:
        found = search_features(st.text_input("Find features", key="iv_inj_find") or None, 100)
        options = dict(zip(found["feature_uid"], found["label"].fillna(""), strict=True))
        for uid in st.session_state.get("iv_inj_features") or []:
            options.setdefault(uid, "")
        uids = st.multiselect(
            "Features to inject",
            list(options),
            key="iv_inj_features",
            format_func=lambda u: f"{u}  {options[u]}",
        )
        if not uids:
            return None
        keys = tuple(interventions.feature_key(u) for u in uids)
        name = f"{len(uids)} feature{'s' * (len(uids) != 1)}"
        donors = interventions.donor_graphs(features=uids, exclude=graph_uid)
    if donors.empty:
        st.error(f"{name} is active in no other graph: there is no prompt to take its "
                 "activations from.")  # fmt: skip
        return None
    prompts = dict(zip(donors["graph_uid"], donors["prompt"], strict=True))
    matched = dict(zip(donors["graph_uid"], donors["matched"], strict=True))
    chosen = st.multiselect(
        "Donor prompts (graphs where they are active)",
        list(prompts),
        default=list(prompts)[:1],
        key="iv_inj_donors",
        format_func=lambda g: f"{prompts[g]}  ·  {matched[g]} of {len(keys)}  [{g}]",
        help="Each feature is set to its mean activation over the donors where it is active, "
        "at the same position counted from the prompt's end.",
    )
    donor_list = tuple(interventions.Donor(g, prompts[g]) for g in chosen)
    return interventions.Injection(name, keys, donor_list)


def _history(graph_uid: str) -> None:
    """The graph's past runs: listed, one opened, several compared."""
    runs = history.runs(graph_uid)
    st.subheader(f"History ({len(runs)} run{'s' * (len(runs) != 1)} on this graph)")
    if not runs:
        st.caption("Runs on this graph are kept here, across sessions.")
        return
    st.dataframe(
        history_frame(runs),
        hide_index=True,
        key="iv_history",
        column_config={
            c: st.column_config.NumberColumn(c, format="%.4f")
            for c in ("p(answer) before", "p(answer) after")
        },
    )
    labels = {r.uid: f"{run_label(r)} [{r.uid[:6]}]" for r in runs}
    if st.session_state.get("iv_open") not in labels:
        st.session_state.pop("iv_open", None)
    c1, c2 = st.columns(2)
    c1.selectbox("Open a past run", list(labels), index=None, key="iv_open", format_func=labels.get)
    compared = c2.multiselect(
        "Compare runs", list(labels), key="iv_compare", format_func=labels.get
    )
    if compared:
        by_uid = {r.uid: r for r in runs}
        tables = {labels[u]: history.result_table(by_uid[u]) for u in compared}
        st.dataframe(comparison(tables), hide_index=True, key="iv_comparison")


def _show_opened(graph_uid: str) -> None:
    uid = st.session_state.get("iv_open")
    opened = history.get(uid) if uid else None
    if opened is None or opened.graph_uid != graph_uid:
        return
    answer = ""
    if opened.p_answer_before is not None:
        answer = f" · p({opened.answer}) {opened.p_answer_before:.4f} → {opened.p_answer_after:.4f}"
    st.markdown(f"**{literal(run_label(opened))}**{literal(answer)}")
    plan = history.plan_of(opened)
    if plan.inject is not None:
        donors = ", ".join(f"“{d.prompt}”" for d in plan.inject.donors)
        st.caption(f"{plan.inject.name} injected from {literal(donors)}")
    show_result(history.result_table(opened))


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
    names = [s.name for s in supernode_data.list_all()]
    edits = _graph_features(features, state)
    scale = _supernode_scale(names, features)
    inject = _injection(names, state.graph)
    o1, o2, o3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    freeze = o1.checkbox("Freeze attention patterns", value=True, key="iv_freeze")
    constrained = o2.checkbox(
        "Constrained (frozen linear setting)",
        value=False,
        key="iv_constrained",
        help="MLP outputs held at their clean values; the edited features "
        "write directly to every layer, as the graph's edges assume.",
    )
    plan = interventions.InterventionPlan(tuple(edits), scale, inject, freeze, constrained)
    if plan.empty:
        st.caption(NOTHING_CHOSEN)
    elif o3.button("Run intervention", type="primary", key="iv_run", icon=":material/play_arrow:"):
        _run(bundle.info, plan, model_path, tc_path)
    _show_opened(state.graph)
    _history(state.graph)


def _run(info: dict, plan: interventions.InterventionPlan, model_path: str, tc_path: str) -> None:
    builder = interventions.load(model_path, tc_path)
    answer = info.get("answer")
    answer = answer if isinstance(answer, str) else None
    try:
        outcome = interventions.compare(builder, str(info["prompt"]), plan, answer=answer)
    except interventions.InterventionInputError as error:
        st.error(str(error), icon=":material/error:")
        st.session_state.pop("iv_open", None)  # an earlier run's result is not this one's
        return
    run = history.record(str(info["graph_uid"]), plan, outcome, answer)
    st.session_state["iv_open"] = run.uid


def _pins_from_picker(state: GraphViewState) -> None:
    state.pinned = list(st.session_state.get("iv_features") or [])


run_page(render)
