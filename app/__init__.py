"""The Streamlit dashboard.

main.py (entry: navigation), views/ (one script per page), ui/ (Streamlit building blocks shared
by pages), data/ (cached reads and writes through `queries/`, and live interventions through
`circuitmap/`), graphview/ (the graph view as pure functions of DataFrames: layout, pruning
control, figure, URL state)."""
