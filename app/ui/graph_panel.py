"""The interactive graph view of one prompt: chart, node side pane, logits, pinned subgraph.

Everything the user marks (selection, pins, groups, threshold) is kept in the URL (urlstate); the
chart's click events and the widgets only change the URL state, through callbacks."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from app.data.graphs import GraphBundle
from app.graphview.collapse import collapse
from app.graphview.connections import connections, with_shares
from app.graphview.figure import ViewMarks, graph_figure
from app.graphview.frames import among
from app.graphview.layout import layout
from app.graphview.prune import prune_by_influence, threshold_for
from app.graphview.state import GraphViewState
from app.ui import urlstate
from app.ui.guard import safe_callback
from app.ui.links import feature_link, interventions_link
from app.ui.supernode_save import save_group_button

CHART_KEY = "gv_chart"
MIN_THRESHOLD = 0.01
PLOT_CONFIG = {"displaylogo": False, "scrollZoom": True, "modeBarButtonsToRemove": ["autoScale2d"]}


def max_drawn_nodes() -> int:
    """Largest graph the browser is asked to draw (CIRCUITMAP_APP_MAX_NODES, default 5000)."""
    return int(os.environ.get("CIRCUITMAP_APP_MAX_NODES", "5000"))


def render_graph_view(bundle: GraphBundle, state: GraphViewState) -> None:
    captions = dict(zip(bundle.nodes["node_id"], bundle.nodes["caption"], strict=True))
    _controls(bundle, state, captions)
    shown, _ = prune_by_influence(bundle.nodes, bundle.edges, state.threshold)
    chart_col, side_col = st.columns([2.4, 1.6], gap="medium")
    with chart_col:
        if len(shown) > max_drawn_nodes():
            _too_big(bundle, len(shown))
        else:
            _chart(bundle, shown, state)
            st.caption(
                f"{len(shown):,} of {len(bundle.nodes):,} nodes shown · click a node to select it, "
                "click it again to clear · box or lasso select pins nodes"
            )
    with side_col:
        _side_pane(bundle, state, captions)
    logits_col, pinned_col = st.columns([1, 2.2], gap="large")
    with logits_col:
        top_logits(bundle.nodes)
    with pinned_col:
        _pinned_pane(bundle, state, captions)


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
    st.session_state["gv_thr"] = max(MIN_THRESHOLD, state.threshold)
    st.session_state["gv_find"] = state.selected if state.selected in captions else None
    c1, c2, c3 = st.columns([2, 3, 1], vertical_alignment="bottom")
    c1.slider(
        "Pruning threshold (share of influence kept)",
        min_value=MIN_THRESHOLD,
        max_value=1.0,
        step=0.01,
        key="gv_thr",
        on_change=lambda: urlstate.update(_set_threshold),
        help="Keep the most influential feature and error nodes that together hold this share "
        "of the graph's influence; tokens and logits always stay.",
    )
    c2.selectbox(
        "Find node",
        bundle.nodes["node_id"].tolist(),
        key="gv_find",
        format_func=lambda n: f"{captions[n]}  [{n}]",
        placeholder="type a token, feature or label",
        on_change=lambda: urlstate.update(_select_found),
    )
    c3.button(
        "Clear selection",
        key="gv_clear",
        disabled=not state.selected,
        on_click=lambda: urlstate.update(_clear_selection),
    )


def _set_threshold(state: GraphViewState) -> None:
    state.threshold = float(st.session_state["gv_thr"])


def _select_found(state: GraphViewState) -> None:
    state.selected = st.session_state.get("gv_find") or ""


def _clear_selection(state: GraphViewState) -> None:
    state.selected = ""


def _chart(bundle: GraphBundle, shown: pd.DataFrame, state: GraphViewState) -> None:
    placed = layout(shown, bundle.n_layers)
    marks = ViewMarks(state.selected, state.pinned, state.groups)
    fig = graph_figure(placed, bundle.edges, bundle.n_layers, bundle.tokens, marks)
    st.plotly_chart(
        fig,
        key=CHART_KEY,
        on_select=_on_chart_select,
        selection_mode=("points", "box", "lasso"),
        config=PLOT_CONFIG,
    )


def _on_chart_select() -> None:
    """One clicked node selects it (or clears it when already selected); a box or lasso pins."""
    event = st.session_state.get(CHART_KEY)
    points = event["selection"]["points"] if event else []
    ids = [p["customdata"] for p in points if isinstance(p.get("customdata"), str)]
    if len(ids) == 1:
        urlstate.update(lambda s: setattr(s, "selected", "" if s.selected == ids[0] else ids[0]))
    elif ids:
        urlstate.update(
            lambda s: s.pinned.extend(i for i in dict.fromkeys(ids) if i not in s.pinned)
        )


def _too_big(bundle: GraphBundle, n_shown: int) -> None:
    limit = max_drawn_nodes()
    fitting = threshold_for(bundle.nodes, limit)
    st.warning(
        f"This graph has {n_shown:,} nodes at this threshold, more than the {limit:,} the view "
        f"draws. Lower the pruning threshold (to {fitting:.2f} or less) to draw it; "
        "*Find node* and the side pane still work.",
        icon=":material/warning:",
    )


def _side_pane(bundle: GraphBundle, state: GraphViewState, captions: dict[str, str]) -> None:
    if not state.selected or state.selected not in captions:
        st.info("Select a node (click it, or use *Find node*) to see its connections.")
        return
    node = bundle.nodes.set_index("node_id").loc[state.selected]
    st.markdown(f"#### :violet[{captions[state.selected]}]")
    facts = [
        f"`{state.selected}`",
        node["kind"],
        f"layer {node['layer']}",
        f"pos {node['position']}",
    ]
    for name in ("activation", "influence", "probability"):
        if not pd.isna(node[name]):
            facts.append(f"{name} {node[name]:.3g}")
    st.caption(" · ".join(facts))
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
    tab_in, tab_out = st.tabs([f"Inputs ({len(inputs)})", f"Outputs ({len(outputs)})"])
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


def _pinned_pane(bundle: GraphBundle, state: GraphViewState, captions: dict[str, str]) -> None:
    st.markdown("**Pinned subgraph**")
    pinned = [p for p in state.pinned if p in captions]
    if not pinned:
        st.caption("Pin nodes (side pane, or box/lasso select in the chart) to build a subgraph.")
        return
    sub_nodes = bundle.nodes[among(bundle.nodes["node_id"], pinned)].drop(columns=["hover"])
    edges = bundle.edges
    sub_edges = edges[among(edges["source"], pinned) & among(edges["target"], pinned)]
    groups = {k: [m for m in v if m in captions] for k, v in state.groups.items()}
    c_nodes, c_edges = collapse(sub_nodes, sub_edges[["source", "target", "weight"]], groups)
    fig = graph_figure(
        layout(c_nodes, bundle.n_layers),
        with_shares(c_edges),
        bundle.n_layers,
        bundle.tokens,
        ViewMarks("", list(c_nodes["node_id"]), {}),
        height=360,
    )
    st.plotly_chart(fig, key="gv_subgraph", config=PLOT_CONFIG)
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
        c1.markdown(f"**{name}**: " + ", ".join(captions.get(m, m) for m in members))
        c2.button(
            "Ungroup",
            key=f"gv_ungroup_{name}",
            on_click=lambda n=name: urlstate.update(lambda s: s.ungroup(n)),
        )
        with c3:
            uids = [uid_of[m] for m in members if isinstance(uid_of.get(m), str)]
            save_group_button(name, uids)


@safe_callback
def _group_from_form() -> None:
    members = st.session_state.get("gv_group_members") or []
    name = st.session_state.get("gv_group_name") or ""
    urlstate.update(lambda s: s.group(name, members))
