"""Streamlit custom components of the dashboard (JavaScript built from frontend/ by npm)."""
