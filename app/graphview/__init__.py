"""The graph view, as pure functions of GraphRecord-shaped DataFrames (no Streamlit, no Neo4j).

Nodes: one row per node with the columns of `records.NodeRecord` plus `feature_uid`.
Edges: `source`, `target` (node ids) and `weight`.
"""
