"""Supernodes: named groups of features defined by a query or a list; members, history, refresh,
and any graph collapsed to them."""

import pandas as pd
import streamlit as st

from app.data import navigation, supernodes
from app.data.graphs import graph_info
from app.ui.collapsed_view import show_collapsed
from app.ui.graph_header import graph_choices
from app.ui.guard import run_page, safe_callback
from app.ui.links import open_feature, open_graph
from app.ui.text import literal

CONFIRM_DELETE = "sn_confirm_delete"


def _overview(nodes: list) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": n.name,
                    "members": len(n.members),
                    "defined by": n.query_name or "explicit list",
                    "description": n.description,
                    "refreshed": n.refreshed_at,
                }
                for n in nodes
            ]
        ),
        hide_index=True,
        key="sn_table",
    )


def _details(name: str) -> None:
    node = supernodes.get(name)
    if node is None:
        st.warning(f"No supernode named `{name}`.")
        return
    st.subheader(literal(node.name))
    if node.description:
        st.markdown(node.description)
    if node.query_name:
        st.caption(
            f"Defined by saved query `{node.query_name}` with {node.params or 'its defaults'}"
        )
    else:
        st.caption("Defined by an explicit list of features.")
    c1, c2, _ = st.columns([1, 1, 4])
    c1.button(
        "Refresh membership",
        key="sn_refresh",
        disabled=not node.query_name,
        icon=":material/refresh:",
        on_click=_refresh,
        args=(name,),
    )
    if "sn_refreshed" in st.session_state:
        st.toast(st.session_state.pop("sn_refreshed"))
    c2.button(
        "Delete", key="sn_delete", icon=":material/delete:", on_click=_ask_delete, args=(name,)
    )
    if st.session_state.get(CONFIRM_DELETE) == name:
        _confirm_delete(name)
    members = supernodes.members_table(node)
    tab_m, tab_h = st.tabs([f"Members ({len(members)})", "History"])
    with tab_m:
        event = st.dataframe(
            members,
            hide_index=True,
            key="sn_members",
            on_select="rerun",
            selection_mode="single-row",
        )
        if event and event.selection.rows:
            open_feature(members.iloc[event.selection.rows[0]]["feature_uid"])
    with tab_h:
        revisions = supernodes.history(name)
        st.dataframe(
            pd.DataFrame([{"at": r.at, "members": len(r.members)} for r in revisions]),
            hide_index=True,
            key="sn_history",
        )


def _ask_delete(name: str) -> None:
    st.session_state[CONFIRM_DELETE] = name


def _confirm_delete(name: str) -> None:
    """Deleting takes a second click: the supernode, its membership and history go for good."""
    with st.container(border=True):
        st.warning(
            f"Delete supernode **{literal(name)}**, its membership and its history? "
            "This cannot be undone.",
            icon=":material/warning:",
        )
        c1, c2, _ = st.columns([1, 1, 4])
        c1.button(
            "Delete for good",
            key="sn_delete_confirm",
            type="primary",
            on_click=_delete,
            args=(name,),
        )
        c2.button("Cancel", key="sn_delete_cancel", on_click=_cancel_delete)


@safe_callback
def _delete(name: str) -> None:
    st.session_state.pop(CONFIRM_DELETE, None)
    supernodes.delete(name)
    st.query_params.clear()


def _cancel_delete() -> None:
    st.session_state.pop(CONFIRM_DELETE, None)


@safe_callback
def _refresh(name: str) -> None:
    result = supernodes.refresh(name)
    st.session_state["sn_refreshed"] = (
        f"{name}: +{len(result.added)} / -{len(result.removed)} members"
        if result.changed
        else f"{name}: membership unchanged"
    )


def _appears_in(name: str) -> pd.DataFrame:
    """The graphs where the supernode has members, most members first; a row opens the graph."""
    found = navigation.supernode_graphs(name)
    st.markdown(f"**Appears in {len(found):,} graph{'s' if len(found) != 1 else ''}**")
    if found.empty:
        st.caption("None of its member features has a node in a complete graph.")
        return found
    event = st.dataframe(
        found[["prompt", "members_present", "member_nodes"]],
        hide_index=True,
        key=f"sn_graphs_{name}",
        on_select="rerun",
        selection_mode="single-row",
        height=min(300, 38 + 35 * len(found)),
        column_config={"prompt": st.column_config.TextColumn("prompt", width="large")},
    )
    if event and event.selection.rows:
        open_graph(found.iloc[event.selection.rows[0]]["graph_uid"])
    return found


def _collapsed(all_names: list[str], default: str, appears: pd.DataFrame) -> None:
    st.subheader("Collapsed graph view")
    labels = graph_choices()
    # Default to the graph where the supernode has the most members (the newest graph may have
    # none); the key carries the supernode so that picking another one re-chooses the default.
    present = [g for g in appears["graph_uid"] if g in labels]
    options = present + [g for g in labels if g not in set(present)]
    c1, c2 = st.columns([3, 2])
    graph = c1.selectbox("Graph", options, format_func=labels.get, key=f"sn_graph_{default}")
    chosen = c2.multiselect(
        "Supernodes to collapse", all_names, default=[default], key="sn_collapse"
    )
    if not graph or not chosen:
        st.caption("Pick a graph and at least one supernode.")
        return
    info = graph_info(graph)
    nodes, collapsed = supernodes.collapsed(graph, chosen)
    # One chart key per graph: "Show the edges of" then offers the new graph's supernodes.
    show_collapsed(collapsed, int(info["n_layers"]), key=f"sn_collapsed_{graph}")


def render() -> None:
    st.title("Supernodes")
    nodes = supernodes.list_all()
    if not nodes:
        st.info(
            "No supernodes yet. Group pinned nodes in the graph view and save them, or make one "
            "from a query result in the Query workbench."
        )
        return
    _overview(nodes)
    names = [n.name for n in nodes]
    current = st.query_params.get("supernode", names[0])
    st.session_state["sn_pick"] = current if current in names else names[0]
    st.selectbox(
        "Supernode",
        names,
        key="sn_pick",
        on_change=lambda: st.query_params.from_dict({"supernode": st.session_state["sn_pick"]}),
    )
    _details(st.session_state["sn_pick"])
    if st.session_state["sn_pick"] in names:
        appears = _appears_in(st.session_state["sn_pick"])
        _collapsed(names, st.session_state["sn_pick"], appears)


run_page(render)
