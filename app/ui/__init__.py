"""Streamlit building blocks shared by the pages (no data access here)."""
