"""The interactive graph view of one prompt: the client-side chart (app/component), and under it
the selected node's pane, the pinned subgraph (drawn by the component too) and the top logits.

Everything the user marks (selection, pins, groups, threshold) is kept in the URL (urlstate): the
chart sends its state when the user changed it, the widgets change it through callbacks."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from app.component.graphview import (
    apply_sent_state,
    graph_payload,
    graph_view,
    pinned_view,
    sent_state,
)
from app.data import run
from app.data.graphs import GraphBundle
from app.data.navigation import catalogue_cards
from app.graphview.connections import INFLUENCE_HELP, INFLUENCE_HINT, connections
from app.graphview.prune import prune_by_influence, threshold_for
from app.graphview.state import GraphViewState
from app.ui import urlstate
from app.ui.guard import safe_callback
from app.ui.links import feature_link, interventions_link
from app.ui.supernode_save import save_group_button, show_save_message
from app.ui.text import literal

CHART_KEY = "gv_chart"
PINNED_KEY = "gv_pinned"
DIRECTION_TABS = ("Inputs", "Outputs")
DIRECTION_KEY = "gv_direction"
SAVE_MESSAGE = "gv_save_message"
MIN_THRESHOLD = 0.01
PLOT_CONFIG = {"displaylogo": False, "scrollZoom": True, "modeBarButtonsToRemove": ["autoScale2d"]}


def max_drawn_nodes() -> int:
    """Largest graph the browser is asked to draw (CIRCUITMAP_APP_MAX_NODES, default 5000)."""
    return int(os.environ.get("CIRCUITMAP_APP_MAX_NODES", "5000"))


def render_graph_view(bundle: GraphBundle, state: GraphViewState) -> None:
    captions = dict(zip(bundle.nodes["node_id"], bundle.nodes["caption"], strict=True))
    _controls(bundle, state, captions)
    shown, _ = prune_by_influence(bundle.nodes, bundle.edges, state.threshold)
    drawn = len(shown) <= max_drawn_nodes()
    if drawn:
        graph_view(chart_payload(bundle.uid, bundle), CHART_KEY, on_change=_on_view_change)
    else:
        _too_big(bundle, state, len(shown))
    side_col, pinned_col, logits_col = st.columns([1.5, 1.7, 0.8], gap="medium")
    with side_col:
        _side_pane(bundle, state, captions)
    with pinned_col:
        _pinned_pane(bundle, state, captions, drawn)
    with logits_col:
        top_logits(bundle.nodes)


def top_logits(nodes: pd.DataFrame, key: str = "gv_logits") -> None:
    logits = nodes[nodes["kind"] == "logit"].sort_values("probability", ascending=False)
    st.markdown("**Top logits**")
    st.dataframe(
        logits[["token", "probability"]],
        hide_index=True,
        column_config={
            "token": st.column_config.TextColumn("token"),
            "probability": st.column_config.ProgressColumn(
                "probability", min_value=0.0, max_value=1.0, format="percent"
            ),
        },
        key=key,
    )


def _controls(bundle: GraphBundle, state: GraphViewState, captions: dict[str, str]) -> None:
    """Find node and Clear selection, in the sidebar: the chart keeps the page's width and
    height (the threshold, edge filter and error toggle are in the chart itself)."""
    st.session_state["gv_find"] = state.selected if state.selected in captions else None
    st.sidebar.selectbox(
        "Find node",
        bundle.nodes["node_id"].tolist(),
        key="gv_find",
        format_func=lambda n: f"{captions[n]}  [{n}]",
        placeholder="type a token, feature or label",
        on_change=lambda: urlstate.update(_select_found),
    )
    st.sidebar.button(
        "Clear selection",
        key="gv_clear",
        disabled=not state.selected,
        on_click=lambda: urlstate.update(_clear_selection),
    )


def _select_found(state: GraphViewState) -> None:
    state.selected = st.session_state.get("gv_find") or ""


def _clear_selection(state: GraphViewState) -> None:
    state.selected = ""


@st.cache_resource(ttl=run.cache_ttl_s(), show_spinner=False, max_entries=16)
def chart_payload(graph_uid: str, _bundle: GraphBundle) -> dict[str, object]:
    """The chart's data (graph and catalogue cards), built once per graph for every session
    (shared and read-only, like the bundle)."""
    bundle, cards = _bundle, catalogue_cards(graph_uid)
    return graph_payload(
        graph_uid, bundle.nodes, bundle.edges, bundle.tokens, bundle.n_layers, cards
    )


def _on_view_change() -> None:
    """The component's view state (selection, pins, groups, threshold) goes into the URL."""
    sent = sent_state(CHART_KEY)
    if sent is not None:
        urlstate.update(lambda s: apply_sent_state(s, sent))


def _too_big(bundle: GraphBundle, state: GraphViewState, n_shown: int) -> None:
    limit = max_drawn_nodes()
    fitting = threshold_for(bundle.nodes, limit)
    st.warning(
        f"This graph has {n_shown:,} nodes at this threshold, more than the {limit:,} the view "
        f"draws. Lower the pruning threshold (to {fitting:.2f} or less) to draw it; "
        "*Find node* and the side pane still work.",
        icon=":material/warning:",
    )
    st.session_state["gv_thr_big"] = max(MIN_THRESHOLD, min(state.threshold, 1.0))
    st.slider(
        "Pruning threshold (share of influence kept)",
        min_value=MIN_THRESHOLD,
        max_value=1.0,
        step=0.01,
        key="gv_thr_big",
        on_change=lambda: urlstate.update(_threshold_from_slider),
    )


def _threshold_from_slider(state: GraphViewState) -> None:
    state.threshold = float(st.session_state["gv_thr_big"])


def _side_pane(bundle: GraphBundle, state: GraphViewState, captions: dict[str, str]) -> None:
    if not state.selected or state.selected not in captions:
        st.info("Select a node (click it, or use *Find node*) to see its connections.")
        return
    node = bundle.nodes.set_index("node_id").loc[state.selected]
    st.markdown(f"#### :violet[{literal(captions[state.selected])}]")
    facts = [
        f"`{state.selected}`",
        node["kind"],
        f"layer {node['layer']}",
        f"pos {node['position']}",
    ]
    for name in ("activation", "influence", "probability"):
        if not pd.isna(node[name]):
            facts.append(f"{name} {node[name]:.3g}")
            if name == "influence":
                facts[-1] += f" ({INFLUENCE_HINT})"
    st.caption(" · ".join(facts), help=INFLUENCE_HELP)
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    c1.button(
        "Unpin" if state.selected in state.pinned else "Pin",
        key="gv_pin_toggle",
        icon=":material/push_pin:",
        on_click=lambda: urlstate.update(lambda s: s.toggle_pin(s.selected)),
    )
    if node["kind"] == "feature" and isinstance(node["feature_uid"], str):
        with c2:
            feature_link(node["feature_uid"], "Feature page")
    inputs, outputs = connections(bundle.nodes, bundle.edges, state.selected)
    # Stable labels and a key: the open tab survives walking to a neighbour (labels that carry
    # counts are new tabs for every node, and would reopen Inputs).
    tab_in, tab_out = st.tabs(list(DIRECTION_TABS), key=DIRECTION_KEY, on_change="rerun")
    st.caption(f"{len(inputs)} inputs · {len(outputs)} outputs")
    with tab_in:
        _edge_table(inputs, f"gv_in_{state.selected}")
    with tab_out:
        _edge_table(outputs, f"gv_out_{state.selected}")


def _edge_table(rows: pd.DataFrame, key: str) -> None:
    if rows.empty:
        st.caption("none")
        return
    st.dataframe(
        rows[["node", "weight", "share"]],
        hide_index=True,
        height=min(430, 38 + 35 * len(rows)),
        column_config={
            "node": st.column_config.TextColumn("node", width="medium"),
            "weight": st.column_config.NumberColumn("weight", format="%+.2f", width="small"),
            "share": st.column_config.ProgressColumn(
                "share", min_value=0.0, max_value=1.0, format="percent", width="small"
            ),
        },
        key=key,
        on_select=lambda: _select_row(key, rows),
        selection_mode="single-row",
    )


def _select_row(key: str, rows: pd.DataFrame) -> None:
    """Selecting a row of the connections table selects that neighbour in the graph."""
    picked = st.session_state[key]["selection"]["rows"]
    if picked:
        target = rows["node_id"].iloc[picked[0]]
        urlstate.update(lambda s: setattr(s, "selected", target))


def _pinned_pane(
    bundle: GraphBundle, state: GraphViewState, captions: dict[str, str], drawn: bool
) -> None:
    st.markdown("**Pinned subgraph**")
    pinned = [p for p in state.pinned if p in captions]
    if drawn:
        # Mounted with the chart, pins or not: it draws the pins made in the chart at once, and
        # brings the chart the URL's state.
        pinned_view(state, CHART_KEY, PINNED_KEY)
    elif not pinned:
        st.caption("Pin nodes (side pane) to build a subgraph.")
    if not pinned:
        return
    _grouping(bundle, state, pinned, captions)
    features = [
        p
        for p in pinned
        if p in set(bundle.nodes.loc[bundle.nodes["kind"] == "feature", "node_id"])
    ]
    c1, c2 = st.columns(2)
    c1.button(
        "Unpin all",
        key="gv_unpin_all",
        on_click=lambda: urlstate.update(lambda s: (s.pinned.clear(), s.groups.clear())),
    )
    if features:
        with c2:
            interventions_link(bundle.uid, features)


def _grouping(
    bundle: GraphBundle, state: GraphViewState, pinned: list[str], captions: dict[str, str]
) -> None:
    with st.form("gv_group_form", clear_on_submit=True, border=False):
        c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
        c1.multiselect(
            "Group pinned nodes", pinned, key="gv_group_members", format_func=captions.get
        )
        c2.text_input("Supernode name", key="gv_group_name", placeholder="e.g. Texas")
        c3.form_submit_button("Group", on_click=_group_from_form)
    uid_of = dict(zip(bundle.nodes["node_id"], bundle.nodes["feature_uid"], strict=True))
    for name, members in state.groups.items():
        c1, c2, c3 = st.columns([4, 1, 1.4], vertical_alignment="center")
        c1.markdown(
            f"**{literal(name)}**: " + ", ".join(literal(captions.get(m, m)) for m in members)
        )
        c2.button(
            "Ungroup",
            key=f"gv_ungroup_{name}",
            on_click=lambda n=name: urlstate.update(lambda s: s.ungroup(n)),
        )
        with c3:
            uids = [uid_of[m] for m in members if isinstance(uid_of.get(m), str)]
            save_group_button(name, uids, SAVE_MESSAGE)
    show_save_message(SAVE_MESSAGE)


@safe_callback
def _group_from_form() -> None:
    members = st.session_state.get("gv_group_members") or []
    name = st.session_state.get("gv_group_name") or ""
    urlstate.update(lambda s: s.group(name, members))
