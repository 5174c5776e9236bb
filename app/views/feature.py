"""Feature page: the catalog feature (label, contexts, density, logit effects) and what the corpus
says about it (graphs where it appears, strongest inputs and outputs over all graphs)."""

import pandas as pd
import streamlit as st

from app.data import features, navigation
from app.data.graphs import tags
from app.graphview.connections import INFLUENCE_HELP
from app.ui.charts import activation_histogram, logit_effects_chart
from app.ui.guard import run_page
from app.ui.links import open_feature, open_graph
from app.ui.tokens import show_contexts


def _picker(current: str) -> None:
    with st.sidebar:
        text = st.text_input("Find a feature (label or uid)", key="ft_search")
        found = features.search(text or None)
        labels = {
            r["feature_uid"]: f"{r['feature_uid']}  {r['label'] or ''}"
            for r in found.to_dict("records")
        }
        if current and current not in labels:
            labels = {current: current, **labels}
        st.session_state["ft_pick"] = current or None
        st.selectbox(
            "Feature",
            list(labels),
            format_func=labels.get,
            key="ft_pick",
            placeholder="choose a feature",
            on_change=lambda: st.query_params.from_dict({"feature": st.session_state["ft_pick"]}),
        )


def _label_editor(uid: str, label: str) -> None:
    with st.form("ft_label_form", border=False):
        c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
        new = c1.text_input("Label", value=label, key=f"ft_label_{uid}", max_chars=500)
        if c2.form_submit_button("Save label", icon=":material/save:"):
            updated = features.save_label(uid, new)
            st.session_state["ft_saved"] = f"Label saved (and on {updated} graph nodes)."
            st.rerun()
    if "ft_saved" in st.session_state:
        st.success(st.session_state.pop("ft_saved"), icon=":material/check:")


def _logit_list(title: str, tokens: object, color: str) -> None:
    st.markdown(f"**{title}**")
    items = _list(tokens)
    if not items:
        st.caption("none stored")
        return
    st.markdown(" ".join(f":{color}-badge[{t}]" for t in items))


def _logit_effects(card: dict) -> None:
    """Bars when the catalogue stored the effect sizes, else the token lists."""
    top, bottom = _list(card.get("top_logits")), _list(card.get("bottom_logits"))
    top_fx, bottom_fx = (
        _list(card.get("top_logit_effects")),
        _list(card.get("bottom_logit_effects")),
    )
    if top and len(top_fx) == len(top) and len(bottom_fx) == len(bottom):
        st.plotly_chart(
            logit_effects_chart(top, top_fx, bottom, bottom_fx),
            key="ft_logits",
            config={"displayModeBar": False},
        )
    else:
        _logit_list("Promotes (top logits)", top, "green")
        _logit_list("Suppresses (bottom logits)", bottom, "violet")


def _list(value: object) -> list:
    return list(value) if isinstance(value, list | tuple) else []


def _metric(value: object, fmt: str) -> str:
    return "–" if value is None or pd.isna(value) else fmt.format(value)


def _appearances(uid: str) -> None:
    c1, c2 = st.columns([2, 2], vertical_alignment="bottom")
    order = c1.radio(
        "Rank by",
        ["activation", "influence"],
        horizontal=True,
        key="ft_order",
        help="Activation: largest first. " + INFLUENCE_HELP,
    )
    tag = c2.selectbox("Prompts tagged", tags(), index=None, key="ft_tag", placeholder="any tag")
    rows = navigation.appearances(uid, order_by=order or "activation", tag=tag)
    if rows.empty:
        st.caption(
            "This feature appears in no complete graph"
            + (f" of a prompt tagged {tag}." if tag else " yet.")
        )
        return
    st.plotly_chart(
        activation_histogram(rows["activation"], f"tag {tag}" if tag else "all prompts"),
        key="ft_act_hist",
        config={"displayModeBar": False},
    )
    event = st.dataframe(
        rows[["prompt", "position", "token", "activation", "influence"]],
        hide_index=True,
        key="ft_graphs",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "prompt": st.column_config.TextColumn("prompt", width="large"),
            "influence": st.column_config.NumberColumn("influence", help=INFLUENCE_HELP),
        },
    )
    st.caption("Select a row to open that graph with this feature selected.")
    if event and event.selection.rows:
        row = rows.iloc[event.selection.rows[0]]
        open_graph(row["graph_uid"], sel=row["node_id"])


def _neighbours(rows: pd.DataFrame, key: str) -> None:
    if rows.empty:
        st.caption("No aggregated edges.")
        return
    event = st.dataframe(
        rows[["neighbour_uid", "label", "layer", "n_graphs", "sum_weight", "mean_weight"]],
        hide_index=True,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
    )
    if event and event.selection.rows:
        open_feature(rows.iloc[event.selection.rows[0]]["neighbour_uid"])


def _token_inputs(rows: pd.DataFrame) -> None:
    """Input tokens (the aggregates hold feature -> feature edges only)."""
    if rows.empty:
        return
    st.markdown("**Input tokens**")
    st.dataframe(
        rows[["token", "n_graphs", "mean_share", "sum_weight", "mean_weight"]],
        hide_index=True,
        key="ft_token_inputs",
        column_config={
            "mean_share": st.column_config.ProgressColumn(
                "mean share",
                min_value=0.0,
                max_value=1.0,
                format="percent",
                help="Mean share of the feature's direct input this token carries",
            )
        },
    )
    st.markdown("**Input features**")


def render() -> None:
    uid = st.query_params.get("feature", "")
    _picker(uid)
    if not uid:
        st.title("Feature")
        st.info("Choose a feature in the sidebar, or open one from a graph's side pane.")
        return
    card = features.feature_card(uid)
    if card is None:
        st.warning(f"No feature with uid `{uid}` in the catalogue.")
        return
    st.title(f"Feature L{card['layer']}/{card['index']}")
    st.caption(f"`{uid}` · transcoder `{card['transcoder_uid']}`")
    _label_editor(uid, card.get("label") or "")
    m = st.columns(4)
    m[0].metric("Activation density", _metric(card.get("density"), "{:.3%}"))
    m[1].metric("Graphs it appears in", _metric(card.get("n_graphs"), "{:,}"))
    m[2].metric("Mean activation", _metric(card.get("mean_activation"), "{:.3g}"))
    m[3].metric(
        "Mean influence",
        _metric(card.get("mean_influence"), "{:.3g}"),
        help=INFLUENCE_HELP,
    )
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.subheader("Top activating contexts")
        show_contexts(features.parse_contexts(card.get("top_contexts")))
    with right:
        st.subheader("Logit effects")
        _logit_effects(card)
        _logit_list("Most reached logits in the corpus", card.get("top_reached_logits"), "orange")
    st.subheader("Across the corpus")
    inputs, outputs = features.neighbourhood(uid)
    token_inputs = navigation.token_inputs(uid)
    t1, t2, t3 = st.tabs(
        [
            "Graphs where it appears",
            f"Strongest inputs ({len(inputs) + len(token_inputs)})",
            f"Strongest outputs ({len(outputs)})",
        ]
    )
    with t1:
        _appearances(uid)
    with t2:
        _token_inputs(token_inputs)
        _neighbours(inputs, "ft_inputs")
    with t3:
        _neighbours(outputs, "ft_outputs")


run_page(render)
