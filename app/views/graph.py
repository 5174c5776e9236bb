"""Graph view: one prompt's attribution graph, Neuronpedia style, with its state in the URL."""

import streamlit as st

from app.data.graphs import load_graph
from app.ui import urlstate
from app.ui.graph_header import graph_header, sidebar_graph_picker
from app.ui.graph_panel import render_graph_view
from app.ui.guard import EMPTY_DB_HINT, run_page


def render() -> None:
    state = urlstate.read()
    if not sidebar_graph_picker(state):
        st.info(EMPTY_DB_HINT, icon=":material/database:")
        return
    if not state.graph:
        st.info("Choose a graph in the sidebar, or open one from the Prompts page.")
        return
    bundle = load_graph(state.graph)
    graph_header(bundle)
    render_graph_view(bundle, state)


run_page(render)
