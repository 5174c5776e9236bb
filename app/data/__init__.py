"""Data access for the dashboard: thin, cached wrappers around `queries` (the only place that holds
Cypher). Functions return DataFrames or plain records and never touch Streamlit widgets."""
