"""circuitmap dashboard entry point: `circuitmap dashboard` runs `streamlit run app/main.py`."""

import streamlit as st

from app.ui.links import PAGES

st.set_page_config(page_title="circuitmap", page_icon=":material/hub:", layout="wide")
# Less empty space above each page, so that the graph view's chart starts above the fold.
st.html("<style>.stMainBlockContainer{padding-top:2.2rem}</style>")

page = st.navigation(
    {
        "Corpus": [
            st.Page(PAGES["overview"], title="Overview", icon=":material/dashboard:", default=True),
            st.Page(PAGES["prompts"], title="Prompts", icon=":material/list:"),
            st.Page("views/corpus_circuit.py", title="Corpus circuit", icon=":material/schema:"),
        ],
        "Graphs": [
            st.Page(PAGES["graph"], title="Graph view", icon=":material/account_tree:"),
            st.Page(PAGES["compare"], title="Compare", icon=":material/compare:"),
            st.Page(PAGES["interventions"], title="Interventions", icon=":material/tune:"),
        ],
        "Features": [
            st.Page(PAGES["feature"], title="Feature", icon=":material/insights:"),
            st.Page(PAGES["supernodes"], title="Supernodes", icon=":material/hub:"),
        ],
        "Queries": [
            st.Page(PAGES["workbench"], title="Query workbench", icon=":material/terminal:"),
        ],
    }
)
page.run()
