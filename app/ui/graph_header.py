"""The header of a graph: its prompt, identity, prediction and scores, and a picker to open another
graph."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.data.graphs import GraphBundle, graph_info, search_graphs
from app.graphview.scores import GraphScores, scores_from_edges
from app.graphview.state import GraphViewState
from app.ui import urlstate
from app.ui.text import distinct_prompts, literal

PICKER_LIMIT = 500


def picker_labels(graphs: pd.DataFrame) -> dict[str, str]:
    """Picker label by graph uid: the prompt led by the words that tell it apart from similar
    prompts (pickers cut long labels at the right), then its transcoder and uid."""
    rows = graphs.to_dict("records")
    short = distinct_prompts([str(r["prompt"]) for r in rows])
    return {
        r["graph_uid"]: f"{short[str(r['prompt'])]}  ·  {r['transcoder_uid']}  [{r['graph_uid']}]"
        for r in rows
    }


def graph_choices(current: str = "") -> dict[str, str]:
    """Complete graphs (newest first) by uid with their picker labels; `current` always in."""
    labels = picker_labels(search_graphs(status="complete", limit=PICKER_LIMIT))
    if current and current not in labels:
        labels = {current: current, **labels}
    return labels


def repaired_uid(uid: str) -> str:
    """A graph uid read from a URL typed or pasted by hand, where a `+` (as in "98+91") arrives
    as a space: the uid with `+` back when that graph exists and the literal one does not."""
    if " " not in uid or graph_info(uid) is not None:
        return uid
    plus = uid.replace(" ", "+")
    return plus if graph_info(plus) is not None else uid


def sidebar_graph_picker(state: GraphViewState) -> bool:
    """Sidebar picker opening the chosen graph in a fresh view; False when there are no graphs."""
    if state.graph and repaired_uid(state.graph) != state.graph:
        state.graph = repaired_uid(state.graph)
        urlstate.write(state)
    labels = graph_choices(state.graph)
    if not labels:
        return False
    st.session_state["gv_pick"] = state.graph or None
    st.sidebar.selectbox(
        "Graph",
        list(labels),
        format_func=labels.get,
        key="gv_pick",
        placeholder="choose a prompt's graph",
        on_change=lambda: urlstate.write(GraphViewState(graph=st.session_state["gv_pick"] or "")),
    )
    return True


def top_prediction(nodes: pd.DataFrame) -> tuple[str, float] | None:
    """(token, probability) of the graph's most probable logit."""
    logits = nodes[nodes["kind"] == "logit"]
    if logits.empty:
        return None
    top = logits.sort_values("probability", ascending=False).iloc[0]
    return str(top["token"]), float(top["probability"])


def prediction_markdown(top: tuple[str, float] | None, answer: object) -> str:
    """ "top prediction X (p)" and, with an expected answer, whether it is that answer."""
    if top is None:
        return ""
    token, p = top
    said = f"top prediction **{literal(token)}** ({p:.0%})"
    if answer is None or (isinstance(answer, float) and pd.isna(answer)) or answer == "":
        return said
    if token.strip() == str(answer).strip():
        return f":green[{said} ✓ expected]"
    return f":red[{said} ✗ expected **{literal(answer)}**]"


def graph_header(bundle: GraphBundle) -> None:
    """Prompt, expected answer and top prediction, then one line of identity, scores and sizes:
    compact, so that the graph below it starts above the fold."""
    info = bundle.info
    answer = info.get("answer")
    expected = f"  →  expected **{literal(answer)}**" if answer else ""
    st.markdown(f"#### “{literal(info['prompt'])}”{expected}")
    prediction = prediction_markdown(top_prediction(bundle.nodes), answer)
    tags = ", ".join(info.get("tags") or [])
    st.caption(
        f"{prediction + ' · ' if prediction else ''}{scores_markdown(bundle)} · "
        f"{len(bundle.nodes):,} nodes · {len(bundle.edges):,} edges · "
        f"model `{info['model_uid']}` · transcoder `{info['transcoder_uid']}` · "
        f"{'tags ' + tags + ' · ' if tags else ''}graph `{info['graph_uid']}`"
    )


def scores_markdown(bundle: GraphBundle) -> str:
    """The graph's stored scores; for a graph stored without them (an imported file that has
    none), the scores computed from its own edges, labelled as such."""
    info = bundle.info
    stored = info.get("replacement_score"), info.get("completeness_score")
    if all(v is not None and not pd.isna(v) for v in stored):
        return (
            f"replacement score **{_score(stored[0])}** · "
            f"completeness score **{_score(stored[1])}**"
        )
    computed = computed_scores(bundle)
    if computed is None:
        return "replacement score – · completeness score –"
    return (
        f"replacement score **{_score(computed.replacement)}** · completeness score "
        f"**{_score(computed.completeness)}** (computed on the pruned graph: the file had none)"
    )


def computed_scores(bundle: GraphBundle) -> GraphScores | None:
    """Cached per graph and session: the computation reads every edge."""
    key = f"gv_scores:{bundle.uid}:{len(bundle.edges)}"
    if key not in st.session_state:
        st.session_state[key] = scores_from_edges(bundle.nodes, bundle.edges)
    return st.session_state[key]


def _score(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.3f}"
