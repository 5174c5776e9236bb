"""Compare two graphs side by side (e.g. "Dallas" vs "Sacramento") with the difference query."""

import pandas as pd
import streamlit as st

from app.data.graphs import graph_diff, load_graph
from app.graphview.connections import with_shares
from app.graphview.figure import ViewMarks, graph_figure
from app.graphview.layout import layout
from app.graphview.prune import prune_by_influence
from app.graphview.state import DEFAULT_THRESHOLD, GraphViewState
from app.ui.graph_header import graph_choices
from app.ui.graph_panel import MIN_THRESHOLD, PLOT_CONFIG, max_drawn_nodes, top_logits
from app.ui.guard import EMPTY_DB_HINT, run_page

CHANGE_TITLES = {
    "only_in_a": "Only in A",
    "only_in_b": "Only in B",
    "weight_change": "Edge weight changes",
}


def diff_key(row: dict) -> str:
    """A node's graph-independent key, as graph_diff.cypher builds it."""
    kind, pos = row["kind"], int(row["position"])
    if kind == "feature":
        return f"{row['feature_uid']}@{pos}"
    if kind == "logit":
        return f"logit:{row['token']}"
    if kind == "token":
        return f"token:{row['token']}@{pos}"
    return f"error:{int(row['layer'])}@{pos}"


def _pick(labels: dict[str, str], side: str, default_index: int) -> str:
    options = list(labels)
    current = st.query_params.get(side, options[min(default_index, len(options) - 1)])
    st.session_state[f"cmp_{side}"] = current if current in options else options[0]
    return st.selectbox(
        f"Graph {side.upper()}",
        options,
        format_func=labels.get,
        key=f"cmp_{side}",
        on_change=lambda: st.query_params.update({side: st.session_state[f"cmp_{side}"]}),
    )


def _side(uid: str, only_here: set[str], threshold: float, key: str) -> None:
    bundle = load_graph(uid)
    st.markdown(f"**“{bundle.info['prompt']}”**")
    shown, _ = prune_by_influence(bundle.nodes, bundle.edges, threshold)
    if len(shown) > max_drawn_nodes():
        st.warning(
            f"{len(shown):,} nodes at this threshold: too many to draw; lower the threshold."
        )
    else:
        marked = [
            n
            for n, k in zip(shown["node_id"], shown.apply(diff_key, axis=1), strict=True)
            if k in only_here
        ]
        fig = graph_figure(
            layout(shown, bundle.n_layers),
            with_shares(bundle.edges),
            bundle.n_layers,
            bundle.tokens,
            ViewMarks(outlined=marked),
            height=480,
        )
        st.plotly_chart(fig, key=key, config=PLOT_CONFIG)
        st.caption(f"{len(marked)} node(s) found only in this graph are outlined in orange.")
    top_logits(bundle.nodes, key=f"{key}_logits")


def url_threshold() -> float:
    """The threshold in the URL (`thr`, as the graph view writes it), else the graph view's."""
    raw = GraphViewState.from_params({"thr": st.query_params.get("thr", "")}).threshold
    return max(MIN_THRESHOLD, raw)


def _threshold_to_url() -> None:
    value = float(st.session_state["cmp_thr"])
    if value == DEFAULT_THRESHOLD:
        st.query_params.pop("thr", None)
    else:
        st.query_params["thr"] = f"{value:g}"


def render() -> None:
    st.title("Compare graphs")
    labels = graph_choices()
    if len(labels) < 2:
        st.info(
            EMPTY_DB_HINT if not labels else "Comparing needs at least two graphs in the database."
        )
        return
    c1, c2, c3 = st.columns([3, 3, 2])
    with c1:
        a = _pick(labels, "a", 0)
    with c2:
        b = _pick(labels, "b", 1)
    st.session_state["cmp_thr"] = url_threshold()
    threshold = c3.slider(
        "Pruning threshold",
        MIN_THRESHOLD,
        1.0,
        step=0.01,
        key="cmp_thr",
        on_change=_threshold_to_url,
        help="The same meaning and default as in the graph view; kept in the URL (thr).",
    )
    diff = graph_diff(a, b, limit=200)
    nodes_diff = diff[diff["item"] == "node"]
    only_a = set(nodes_diff.loc[nodes_diff["change"] == "only_in_a", "source_key"])
    only_b = set(nodes_diff.loc[nodes_diff["change"] == "only_in_b", "source_key"])
    left, right = st.columns(2, gap="medium")
    with left:
        _side(a, only_a, threshold, "cmp_chart_a")
    with right:
        _side(b, only_b, threshold, "cmp_chart_b")
    st.subheader("Differences")
    counts = diff.groupby(["change", "item"]).size().rename("rows").reset_index()
    st.dataframe(counts, hide_index=True, key="cmp_counts")
    tabs = st.tabs([CHANGE_TITLES[c] for c in CHANGE_TITLES])
    for tab, change in zip(tabs, CHANGE_TITLES, strict=True):
        with tab:
            part = diff[diff["change"] == change].drop(columns=["change"])
            st.dataframe(
                part if not part.empty else pd.DataFrame({"note": ["none"]}),
                hide_index=True,
                key=f"cmp_{change}",
            )


run_page(render)
